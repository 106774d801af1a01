/* test_smtp_parse.c - smtp_parse_command and its error replies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "smtp_parse.h"

#define S(lit) lit, sizeof(lit) - 1     /* keeps NUL octets inside literals */
#define N(array) (sizeof(array) / sizeof((array)[0]))
#define NONE SMTP_VERB_COUNT            /* verb not recognised */

static const struct {
	const char *name, *line;
	size_t len;
	enum smtp_parse_result want;
	enum smtp_verb verb;
} cases[] = {
	/* verbs and their argument rules */
	{ "HELO",                        S("HELO client.example"), SMTP_PARSE_OK, SMTP_HELO },
	{ "helo lower case",             S("helo client.example"), SMTP_PARSE_OK, SMTP_HELO },
	{ "EHLO",                        S("EHLO client.example"), SMTP_PARSE_OK, SMTP_EHLO },
	{ "EHLO mixed case",             S("eHlO client.example"), SMTP_PARSE_OK, SMTP_EHLO },
	{ "EHLO address literal",        S("EHLO [192.0.2.1]"), SMTP_PARSE_OK, SMTP_EHLO },
	{ "HELO without argument",       S("HELO"), SMTP_PARSE_SYNTAX, SMTP_HELO },
	{ "EHLO without argument",       S("EHLO"), SMTP_PARSE_SYNTAX, SMTP_EHLO },
	{ "EHLO and one space",          S("EHLO "), SMTP_PARSE_SYNTAX, SMTP_EHLO },
	{ "EHLO and spaces",             S("EHLO    "), SMTP_PARSE_SYNTAX, SMTP_EHLO },
	{ "DATA",                        S("DATA"), SMTP_PARSE_OK, SMTP_DATA },
	{ "data lower case",             S("data"), SMTP_PARSE_OK, SMTP_DATA },
	{ "DATA trailing space",         S("DATA "), SMTP_PARSE_OK, SMTP_DATA },
	{ "DATA trailing spaces",        S("DATA    "), SMTP_PARSE_OK, SMTP_DATA },
	{ "DATA with argument",          S("DATA now"), SMTP_PARSE_SYNTAX, SMTP_DATA },
	{ "RSET",                        S("RSET"), SMTP_PARSE_OK, SMTP_RSET },
	{ "RSET with argument",          S("RSET all"), SMTP_PARSE_SYNTAX, SMTP_RSET },
	{ "QUIT",                        S("QUIT"), SMTP_PARSE_OK, SMTP_QUIT },
	{ "Quit mixed case",             S("Quit"), SMTP_PARSE_OK, SMTP_QUIT },
	{ "QUIT with argument",          S("QUIT now"), SMTP_PARSE_SYNTAX, SMTP_QUIT },
	{ "STARTTLS",                    S("STARTTLS"), SMTP_PARSE_OK, SMTP_STARTTLS },
	{ "starttls lower case",         S("starttls"), SMTP_PARSE_OK, SMTP_STARTTLS },
	{ "STARTTLS with argument",      S("STARTTLS x"), SMTP_PARSE_SYNTAX, SMTP_STARTTLS },
	{ "NOOP",                        S("NOOP"), SMTP_PARSE_OK, SMTP_NOOP },
	{ "NOOP with argument",          S("NOOP anything at all"), SMTP_PARSE_OK, SMTP_NOOP },
	{ "HELP",                        S("HELP"), SMTP_PARSE_OK, SMTP_HELP },
	{ "HELP with topic",             S("help MAIL"), SMTP_PARSE_OK, SMTP_HELP },
	{ "VRFY with argument",          S("VRFY joe"), SMTP_PARSE_OK, SMTP_VRFY },
	{ "VRFY without argument",       S("VRFY"), SMTP_PARSE_SYNTAX, SMTP_VRFY },
	{ "VRFY and a space",            S("VRFY "), SMTP_PARSE_SYNTAX, SMTP_VRFY },
	{ "EXPN with argument",          S("EXPN staff"), SMTP_PARSE_OK, SMTP_EXPN },
	{ "EXPN without argument",       S("EXPN"), SMTP_PARSE_SYNTAX, SMTP_EXPN },
	{ "AUTH mechanism",              S("AUTH PLAIN"), SMTP_PARSE_OK, SMTP_AUTH },
	{ "AUTH initial response",       S("auth PLAIN AGpvZQBzZWNyZXQ="), SMTP_PARSE_OK, SMTP_AUTH },
	{ "AUTH without argument",       S("AUTH"), SMTP_PARSE_SYNTAX, SMTP_AUTH },
	{ "BDAT with argument",          S("BDAT 100 LAST"), SMTP_PARSE_OK, SMTP_BDAT },
	{ "BDAT without argument",       S("BDAT"), SMTP_PARSE_SYNTAX, SMTP_BDAT },
	/* unknown */
	{ "empty line",                  S(""), SMTP_PARSE_UNKNOWN, NONE },
	{ "only a space",                S(" "), SMTP_PARSE_UNKNOWN, NONE },
	{ "leading space",               S(" DATA"), SMTP_PARSE_UNKNOWN, NONE },
	{ "unknown verb",                S("XYZZY"), SMTP_PARSE_UNKNOWN, NONE },
	{ "verb prefix",                 S("MAI"), SMTP_PARSE_UNKNOWN, NONE },
	{ "verb with suffix",            S("MAILX FROM:<a@b.example>"), SMTP_PARSE_UNKNOWN, NONE },
	{ "STARTTLS with suffix",        S("STARTTLSX"), SMTP_PARSE_UNKNOWN, NONE },
	{ "HELLO",                       S("HELLO client.example"), SMTP_PARSE_UNKNOWN, NONE },
	{ "verb followed by tab",        S("MAIL\tFROM:<a@b.example>"), SMTP_PARSE_UNKNOWN, NONE },
	{ "verb followed by colon",      S("DATA:"), SMTP_PARSE_UNKNOWN, NONE },
	{ "8-bit verb",                  S("D\xc3\x84TA"), SMTP_PARSE_UNKNOWN, NONE },
	/* NUL, CR, LF anywhere */
	{ "only NUL",                    S("\0"), SMTP_PARSE_BAD_CHAR, NONE },
	{ "NUL first",                   S("\0DATA"), SMTP_PARSE_BAD_CHAR, NONE },
	{ "NUL inside the verb",         S("DA\0TA"), SMTP_PARSE_BAD_CHAR, NONE },
	{ "NUL after the verb",          S("DATA \0"), SMTP_PARSE_BAD_CHAR, SMTP_DATA },
	{ "NUL in a path",               S("MAIL FROM:<a\0@b.example>"), SMTP_PARSE_BAD_CHAR, SMTP_MAIL },
	{ "NUL last",                    S("RCPT TO:<a@b.example>\0"), SMTP_PARSE_BAD_CHAR, SMTP_RCPT },
	{ "CR first",                    S("\rDATA"), SMTP_PARSE_BAD_CHAR, NONE },
	{ "CR last",                     S("RCPT TO:<a@b.example>\r"), SMTP_PARSE_BAD_CHAR, SMTP_RCPT },
	{ "CR in EHLO",                  S("EHLO a\rb"), SMTP_PARSE_BAD_CHAR, SMTP_EHLO },
	{ "LF inside a line",            S("RCPT TO:<a@b.example>\nDATA"), SMTP_PARSE_BAD_CHAR, SMTP_RCPT },
	{ "LF last",                     S("NOOP \n"), SMTP_PARSE_BAD_CHAR, SMTP_NOOP },
	{ "CRLF smuggled",               S("EHLO a\r\nDATA"), SMTP_PARSE_BAD_CHAR, SMTP_EHLO },
	{ "bad char beats unknown",      S("XYZZY\n"), SMTP_PARSE_BAD_CHAR, NONE },
	{ "bad char beats syntax",       S("QUIT \r"), SMTP_PARSE_BAD_CHAR, SMTP_QUIT },
	/* MAIL FROM: syntax */
	{ "MAIL",                        S("MAIL FROM:<joe@example.com>"), SMTP_PARSE_OK, SMTP_MAIL },
	{ "mail from lower case",        S("mail from:<joe@example.com>"), SMTP_PARSE_OK, SMTP_MAIL },
	{ "MAIL From mixed case",        S("Mail From:<joe@example.com>"), SMTP_PARSE_OK, SMTP_MAIL },
	{ "MAIL one space after colon",  S("MAIL FROM: <joe@example.com>"), SMTP_PARSE_OK, SMTP_MAIL },
	{ "MAIL two spaces after colon", S("MAIL FROM:  <joe@example.com>"), SMTP_PARSE_SYNTAX, SMTP_MAIL },
	{ "MAIL trailing spaces",        S("MAIL FROM:<joe@example.com>   "), SMTP_PARSE_OK, SMTP_MAIL },
	{ "MAIL null path",              S("MAIL FROM:<>"), SMTP_PARSE_OK, SMTP_MAIL },
	{ "MAIL null path, space",       S("MAIL FROM: <>"), SMTP_PARSE_OK, SMTP_MAIL },
	{ "MAIL without brackets",       S("MAIL FROM:joe@example.com"), SMTP_PARSE_SYNTAX, SMTP_MAIL },
	{ "MAIL space, no brackets",     S("MAIL FROM: joe@example.com"), SMTP_PARSE_SYNTAX, SMTP_MAIL },
	{ "MAIL without >",              S("MAIL FROM:<joe@example.com"), SMTP_PARSE_SYNTAX, SMTP_MAIL },
	{ "MAIL quote never closed",     S("MAIL FROM:<\"joe@example.com>"), SMTP_PARSE_SYNTAX, SMTP_MAIL },
	{ "MAIL FROM: alone",            S("MAIL FROM:"), SMTP_PARSE_SYNTAX, SMTP_MAIL },
	{ "MAIL FROM without colon",     S("MAIL FROM <a@b.example>"), SMTP_PARSE_SYNTAX, SMTP_MAIL },
	{ "MAIL verb only",              S("MAIL"), SMTP_PARSE_SYNTAX, SMTP_MAIL },
	{ "MAIL and a space",            S("MAIL "), SMTP_PARSE_SYNTAX, SMTP_MAIL },
	{ "MAIL TO:",                    S("MAIL TO:<a@b.example>"), SMTP_PARSE_SYNTAX, SMTP_MAIL },
	{ "MAIL two spaces before FROM", S("MAIL  FROM:<a@b.example>"), SMTP_PARSE_SYNTAX, SMTP_MAIL },
	{ "MAIL param glued to path",    S("MAIL FROM:<a@b.example>SIZE=1"), SMTP_PARSE_SYNTAX, SMTP_MAIL },
	{ "MAIL two >",                  S("MAIL FROM:<a@b.example>>"), SMTP_PARSE_SYNTAX, SMTP_MAIL },
	{ "MAIL postmaster",             S("MAIL FROM:<postmaster>"), SMTP_PARSE_BAD_PATH, SMTP_MAIL },
	{ "MAIL no domain",              S("MAIL FROM:<joe>"), SMTP_PARSE_BAD_PATH, SMTP_MAIL },
	{ "MAIL double dot",             S("MAIL FROM:<a..b@example.com>"), SMTP_PARSE_BAD_PATH, SMTP_MAIL },
	{ "MAIL bad domain",             S("MAIL FROM:<a@-b.example>"), SMTP_PARSE_BAD_PATH, SMTP_MAIL },
	{ "MAIL space in path",          S("MAIL FROM:<a b@example.com>"), SMTP_PARSE_BAD_PATH, SMTP_MAIL },
	{ "MAIL control in path",        S("MAIL FROM:<a\x01@example.com>"), SMTP_PARSE_BAD_PATH, SMTP_MAIL },
	{ "MAIL nested brackets",        S("MAIL FROM:<<a@b.example>"), SMTP_PARSE_BAD_PATH, SMTP_MAIL },
	{ "MAIL quoted with spaces",     S("MAIL FROM:<\"joe public\"@example.com>"), SMTP_PARSE_OK, SMTP_MAIL },
	{ "MAIL quoted holding >",       S("MAIL FROM:<\"a>b\"@example.com>"), SMTP_PARSE_OK, SMTP_MAIL },
	{ "MAIL quoted escapes",         S("MAIL FROM:<\"a\\\"> \\\\\"@example.com>"), SMTP_PARSE_OK, SMTP_MAIL },
	{ "MAIL IPv4 literal",           S("MAIL FROM:<joe@[192.0.2.1]>"), SMTP_PARSE_OK, SMTP_MAIL },
	{ "MAIL IPv6 literal",           S("MAIL FROM:<joe@[IPv6:2001:db8::1]>"), SMTP_PARSE_OK, SMTP_MAIL },
	{ "MAIL bad literal",            S("MAIL FROM:<joe@[192.0.2.256]>"), SMTP_PARSE_BAD_PATH, SMTP_MAIL },
	/* MAIL parameters */
	{ "SIZE",                        S("MAIL FROM:<a@b.example> SIZE=1000"), SMTP_PARSE_OK, SMTP_MAIL },
	{ "size lower case",             S("MAIL FROM:<a@b.example> size=1000"), SMTP_PARSE_OK, SMTP_MAIL },
	{ "SIZE=0",                      S("MAIL FROM:<> SIZE=0"), SMTP_PARSE_OK, SMTP_MAIL },
	{ "SIZE UINT64_MAX",             S("MAIL FROM:<a@b.example> SIZE=18446744073709551615"), SMTP_PARSE_OK, SMTP_MAIL },
	{ "SIZE UINT64_MAX + 1",         S("MAIL FROM:<a@b.example> SIZE=18446744073709551616"), SMTP_PARSE_OK, SMTP_MAIL },
	{ "SIZE 21 digits",              S("MAIL FROM:<a@b.example> SIZE=999999999999999999999"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "SIZE 20 nines saturates",     S("MAIL FROM:<a@b.example> SIZE=99999999999999999999"), SMTP_PARSE_OK, SMTP_MAIL },
	{ "SIZE 20 digits, zeros",       S("MAIL FROM:<a@b.example> SIZE=00000000000000000001"), SMTP_PARSE_OK, SMTP_MAIL },
	{ "SIZE 21 digits",              S("MAIL FROM:<a@b.example> SIZE=000000000000000000001"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "SIZE empty value",            S("MAIL FROM:<a@b.example> SIZE="), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "SIZE without value",          S("MAIL FROM:<a@b.example> SIZE"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "SIZE negative",               S("MAIL FROM:<a@b.example> SIZE=-1"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "SIZE plus sign",              S("MAIL FROM:<a@b.example> SIZE=+1"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "SIZE with unit",              S("MAIL FROM:<a@b.example> SIZE=10k"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "SIZE twice",                  S("MAIL FROM:<a@b.example> SIZE=1 SIZE=2"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "SIZE ==",                     S("MAIL FROM:<a@b.example> SIZE==1"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "BODY=7BIT",                   S("MAIL FROM:<a@b.example> BODY=7BIT"), SMTP_PARSE_OK, SMTP_MAIL },
	{ "BODY=8BITMIME",               S("MAIL FROM:<a@b.example> BODY=8BITMIME"), SMTP_PARSE_OK, SMTP_MAIL },
	{ "body=8bitmime lower case",    S("MAIL FROM:<a@b.example> body=8bitmime"), SMTP_PARSE_OK, SMTP_MAIL },
	{ "BODY=BINARYMIME",             S("MAIL FROM:<a@b.example> BODY=BINARYMIME"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "BODY=8BIT",                   S("MAIL FROM:<a@b.example> BODY=8BIT"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "BODY without value",          S("MAIL FROM:<a@b.example> BODY"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "BODY empty value",            S("MAIL FROM:<a@b.example> BODY="), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "BODY twice",                  S("MAIL FROM:<a@b.example> BODY=7BIT BODY=7BIT"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "SMTPUTF8",                    S("MAIL FROM:<a@b.example> SMTPUTF8"), SMTP_PARSE_OK, SMTP_MAIL },
	{ "smtputf8 lower case",         S("MAIL FROM:<a@b.example> smtputf8"), SMTP_PARSE_OK, SMTP_MAIL },
	{ "SMTPUTF8 with value",         S("MAIL FROM:<a@b.example> SMTPUTF8=yes"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "all parameters",              S("MAIL FROM:<a@b.example> SIZE=9 BODY=8BITMIME SMTPUTF8"), SMTP_PARSE_OK, SMTP_MAIL },
	{ "parameters, runs of spaces",  S("MAIL FROM:<a@b.example>  SIZE=9   SMTPUTF8  "), SMTP_PARSE_OK, SMTP_MAIL },
	{ "unknown parameter",           S("MAIL FROM:<a@b.example> FOO=bar"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "keyword with hyphen",         S("MAIL FROM:<a@b.example> X-FOO=1"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "keyword starting with -",     S("MAIL FROM:<a@b.example> -SIZE=1"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "empty keyword",               S("MAIL FROM:<a@b.example> =1"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "8-bit in value",              S("MAIL FROM:<a@b.example> SIZE=1\xc3\xa4"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "tab in value",                S("MAIL FROM:<a@b.example> SIZE=1\t"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "bad param beats bad path",    S("MAIL FROM:<a..b@example.com> FOO"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	/* UTF-8 */
	{ "MAIL UTF-8 without SMTPUTF8", S("MAIL FROM:<j\xc3\xb6rg@example.com>"), SMTP_PARSE_NEEDS_UTF8, SMTP_MAIL },
	{ "MAIL UTF-8 with SMTPUTF8",    S("MAIL FROM:<j\xc3\xb6rg@example.com> SMTPUTF8"), SMTP_PARSE_OK, SMTP_MAIL },
	{ "MAIL UTF-8 domain, SMTPUTF8", S("MAIL FROM:<a@b\xc3\xbc" "cher.example> SMTPUTF8"), SMTP_PARSE_OK, SMTP_MAIL },
	{ "MAIL bad UTF-8, SMTPUTF8",    S("MAIL FROM:<j\xff@example.com> SMTPUTF8"), SMTP_PARSE_BAD_PATH, SMTP_MAIL },
	{ "MAIL bad 8-bit, no SMTPUTF8", S("MAIL FROM:<j\xff@example.com>"), SMTP_PARSE_NEEDS_UTF8, SMTP_MAIL },
	{ "MAIL 8-bit source route",     S("MAIL FROM:<@b\xc3\xbc" "cher.example:a@b.example>"), SMTP_PARSE_NEEDS_UTF8, SMTP_MAIL },
	{ "RCPT UTF-8 (session checks)", S("RCPT TO:<j\xc3\xb6rg@example.com>"), SMTP_PARSE_OK, SMTP_RCPT },
	{ "RCPT bad UTF-8",              S("RCPT TO:<j\xc3@example.com>"), SMTP_PARSE_BAD_PATH, SMTP_RCPT },
	/* RCPT TO: */
	{ "RCPT",                        S("RCPT TO:<joe@example.com>"), SMTP_PARSE_OK, SMTP_RCPT },
	{ "rcpt to lower case",          S("rcpt to:<joe@example.com>"), SMTP_PARSE_OK, SMTP_RCPT },
	{ "RCPT one space after colon",  S("RCPT TO: <joe@example.com>"), SMTP_PARSE_OK, SMTP_RCPT },
	{ "RCPT two spaces after colon", S("RCPT TO:  <joe@example.com>"), SMTP_PARSE_SYNTAX, SMTP_RCPT },
	{ "RCPT trailing spaces",        S("RCPT TO:<joe@example.com>  "), SMTP_PARSE_OK, SMTP_RCPT },
	{ "RCPT postmaster",             S("RCPT TO:<postmaster>"), SMTP_PARSE_OK, SMTP_RCPT },
	{ "RCPT Postmaster any case",    S("RCPT TO:<PostMaster>"), SMTP_PARSE_OK, SMTP_RCPT },
	{ "RCPT postmaster@domain",      S("RCPT TO:<postmaster@example.com>"), SMTP_PARSE_OK, SMTP_RCPT },
	{ "RCPT no domain",              S("RCPT TO:<joe>"), SMTP_PARSE_BAD_PATH, SMTP_RCPT },
	{ "RCPT null path",              S("RCPT TO:<>"), SMTP_PARSE_BAD_PATH, SMTP_RCPT },
	{ "RCPT without brackets",       S("RCPT TO:joe@example.com"), SMTP_PARSE_SYNTAX, SMTP_RCPT },
	{ "RCPT FROM:",                  S("RCPT FROM:<joe@example.com>"), SMTP_PARSE_SYNTAX, SMTP_RCPT },
	{ "RCPT verb only",              S("RCPT"), SMTP_PARSE_SYNTAX, SMTP_RCPT },
	{ "RCPT TO: alone",              S("RCPT TO:"), SMTP_PARSE_SYNTAX, SMTP_RCPT },
	{ "RCPT with SIZE",              S("RCPT TO:<joe@example.com> SIZE=1"), SMTP_PARSE_BAD_PARAM, SMTP_RCPT },
	{ "RCPT with SMTPUTF8",          S("RCPT TO:<joe@example.com> SMTPUTF8"), SMTP_PARSE_BAD_PARAM, SMTP_RCPT },
	/* DSN, MAIL: RET and ENVID (RFC 3461 §4.3, §4.4) */
	{ "RET=FULL",                    S("MAIL FROM:<a@b.example> RET=FULL"), SMTP_PARSE_OK, SMTP_MAIL },
	{ "RET=HDRS",                    S("MAIL FROM:<a@b.example> RET=HDRS"), SMTP_PARSE_OK, SMTP_MAIL },
	{ "ret=hdrs lower case",         S("MAIL FROM:<> ret=hdrs"), SMTP_PARSE_OK, SMTP_MAIL },
	{ "RET=XYZ",                     S("MAIL FROM:<a@b.example> RET=XYZ"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "RET=FULLER",                  S("MAIL FROM:<a@b.example> RET=FULLER"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "RET without value",           S("MAIL FROM:<a@b.example> RET"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "RET twice",                   S("MAIL FROM:<a@b.example> RET=FULL RET=FULL"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "RET twice, other case",       S("MAIL FROM:<a@b.example> RET=FULL ret=HDRS"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "RET on RCPT",                 S("RCPT TO:<a@b.example> RET=FULL"), SMTP_PARSE_BAD_PARAM, SMTP_RCPT },
	{ "ENVID",                       S("MAIL FROM:<a@b.example> ENVID=QQ314159"), SMTP_PARSE_OK, SMTP_MAIL },
	{ "envid lower case",            S("MAIL FROM:<a@b.example> envid=x"), SMTP_PARSE_OK, SMTP_MAIL },
	{ "ENVID with hexchars",         S("MAIL FROM:<a@b.example> ENVID=a+2Bb+20c+3D"), SMTP_PARSE_OK, SMTP_MAIL },
	{ "ENVID bad hexchar +ZZ",       S("MAIL FROM:<a@b.example> ENVID=+ZZ"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "ENVID lower-case hex",        S("MAIL FROM:<a@b.example> ENVID=+2b"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "ENVID '+' at the end",        S("MAIL FROM:<a@b.example> ENVID=ab+"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "ENVID '+' and one digit",     S("MAIL FROM:<a@b.example> ENVID=ab+4"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "ENVID encoded CR",            S("MAIL FROM:<a@b.example> ENVID=a+0Db"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "ENVID encoded LF",            S("MAIL FROM:<a@b.example> ENVID=a+0A"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "ENVID encoded DEL",           S("MAIL FROM:<a@b.example> ENVID=+7F"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "ENVID encoded 8-bit",         S("MAIL FROM:<a@b.example> ENVID=+C3+A4"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "ENVID empty",                 S("MAIL FROM:<a@b.example> ENVID="), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "ENVID without value",         S("MAIL FROM:<a@b.example> ENVID"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "ENVID twice",                 S("MAIL FROM:<a@b.example> ENVID=a ENVID=a"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "ENVID on RCPT",               S("RCPT TO:<a@b.example> ENVID=a"), SMTP_PARSE_BAD_PARAM, SMTP_RCPT },
	{ "every MAIL parameter",        S("MAIL FROM:<a@b.example> SIZE=9 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=e1"), SMTP_PARSE_OK, SMTP_MAIL },
	/* DSN, RCPT: NOTIFY and ORCPT (RFC 3461 §4.1, §4.2) */
	{ "NOTIFY=NEVER",                S("RCPT TO:<joe@example.com> NOTIFY=NEVER"), SMTP_PARSE_OK, SMTP_RCPT },
	{ "NOTIFY all three",            S("RCPT TO:<joe@example.com> NOTIFY=SUCCESS,FAILURE,DELAY"), SMTP_PARSE_OK, SMTP_RCPT },
	{ "NOTIFY any order",            S("RCPT TO:<joe@example.com> NOTIFY=DELAY,SUCCESS"), SMTP_PARSE_OK, SMTP_RCPT },
	{ "notify lower case",           S("RCPT TO:<joe@example.com> notify=failure"), SMTP_PARSE_OK, SMTP_RCPT },
	{ "NOTIFY repeated keyword",     S("RCPT TO:<joe@example.com> NOTIFY=DELAY,DELAY"), SMTP_PARSE_OK, SMTP_RCPT },
	{ "NOTIFY=NEVER,SUCCESS",        S("RCPT TO:<joe@example.com> NOTIFY=NEVER,SUCCESS"), SMTP_PARSE_BAD_PARAM, SMTP_RCPT },
	{ "NOTIFY=FAILURE,NEVER",        S("RCPT TO:<joe@example.com> NOTIFY=FAILURE,NEVER"), SMTP_PARSE_BAD_PARAM, SMTP_RCPT },
	{ "NOTIFY=NEVER,NEVER",          S("RCPT TO:<joe@example.com> NOTIFY=NEVER,NEVER"), SMTP_PARSE_OK, SMTP_RCPT },
	{ "NOTIFY=ALWAYS",               S("RCPT TO:<joe@example.com> NOTIFY=ALWAYS"), SMTP_PARSE_BAD_PARAM, SMTP_RCPT },
	{ "NOTIFY trailing comma",       S("RCPT TO:<joe@example.com> NOTIFY=SUCCESS,"), SMTP_PARSE_BAD_PARAM, SMTP_RCPT },
	{ "NOTIFY leading comma",        S("RCPT TO:<joe@example.com> NOTIFY=,SUCCESS"), SMTP_PARSE_BAD_PARAM, SMTP_RCPT },
	{ "NOTIFY two commas",           S("RCPT TO:<joe@example.com> NOTIFY=SUCCESS,,DELAY"), SMTP_PARSE_BAD_PARAM, SMTP_RCPT },
	{ "NOTIFY empty",                S("RCPT TO:<joe@example.com> NOTIFY="), SMTP_PARSE_BAD_PARAM, SMTP_RCPT },
	{ "NOTIFY without value",        S("RCPT TO:<joe@example.com> NOTIFY"), SMTP_PARSE_BAD_PARAM, SMTP_RCPT },
	{ "NOTIFY twice",                S("RCPT TO:<joe@example.com> NOTIFY=DELAY NOTIFY=DELAY"), SMTP_PARSE_BAD_PARAM, SMTP_RCPT },
	{ "NOTIFY on MAIL",              S("MAIL FROM:<joe@example.com> NOTIFY=NEVER"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "ORCPT",                       S("RCPT TO:<joe@example.com> ORCPT=rfc822;joe@example.com"), SMTP_PARSE_OK, SMTP_RCPT },
	{ "ORCPT with hexchars",         S("RCPT TO:<joe@example.com> ORCPT=rfc822;joe+2Btag@example.com"), SMTP_PARSE_OK, SMTP_RCPT },
	{ "ORCPT utf-8 type",            S("RCPT TO:<joe@example.com> ORCPT=utf-8;j\\x{F6}rg@example.com"), SMTP_PARSE_OK, SMTP_RCPT },
	{ "ORCPT any address",           S("RCPT TO:<joe@example.com> ORCPT=x400;/G+3DJoe/S+3DPublic/"), SMTP_PARSE_OK, SMTP_RCPT },
	{ "ORCPT with '=' (not xtext)",  S("RCPT TO:<joe@example.com> ORCPT=x400;/G=Joe/"), SMTP_PARSE_BAD_PARAM, SMTP_RCPT },
	{ "ORCPT without ';'",           S("RCPT TO:<joe@example.com> ORCPT=joe@example.com"), SMTP_PARSE_BAD_PARAM, SMTP_RCPT },
	{ "ORCPT empty type",            S("RCPT TO:<joe@example.com> ORCPT=;joe@example.com"), SMTP_PARSE_BAD_PARAM, SMTP_RCPT },
	{ "ORCPT empty address",         S("RCPT TO:<joe@example.com> ORCPT=rfc822;"), SMTP_PARSE_BAD_PARAM, SMTP_RCPT },
	{ "ORCPT type not an atom",      S("RCPT TO:<joe@example.com> ORCPT=rfc(822);joe@example.com"), SMTP_PARSE_BAD_PARAM, SMTP_RCPT },
	{ "ORCPT bad xtext",             S("RCPT TO:<joe@example.com> ORCPT=rfc822;joe+ZZ@example.com"), SMTP_PARSE_BAD_PARAM, SMTP_RCPT },
	{ "ORCPT encoded LF",            S("RCPT TO:<joe@example.com> ORCPT=rfc822;joe+0A@example.com"), SMTP_PARSE_BAD_PARAM, SMTP_RCPT },
	{ "ORCPT twice",                 S("RCPT TO:<joe@example.com> ORCPT=rfc822;a@b ORCPT=rfc822;a@b"), SMTP_PARSE_BAD_PARAM, SMTP_RCPT },
	{ "ORCPT on MAIL",               S("MAIL FROM:<joe@example.com> ORCPT=rfc822;a@b"), SMTP_PARSE_BAD_PARAM, SMTP_MAIL },
	{ "NOTIFY and ORCPT",            S("RCPT TO:<joe@example.com> NOTIFY=SUCCESS ORCPT=rfc822;joe@example.com"), SMTP_PARSE_OK, SMTP_RCPT },
	/* source routes */
	{ "MAIL source route",           S("MAIL FROM:<@a.example,@b.example:joe@example.com>"), SMTP_PARSE_OK, SMTP_MAIL },
	{ "RCPT source route",           S("RCPT TO:<@a.example:joe@example.com>"), SMTP_PARSE_OK, SMTP_RCPT },
	{ "route without mailbox",       S("RCPT TO:<@a.example:>"), SMTP_PARSE_BAD_PATH, SMTP_RCPT },
	{ "MAIL route without mailbox",  S("MAIL FROM:<@a.example:>"), SMTP_PARSE_BAD_PATH, SMTP_MAIL },
	{ "route without colon",         S("RCPT TO:<@a.example>"), SMTP_PARSE_BAD_PATH, SMTP_RCPT },
	{ "route with empty domain",     S("RCPT TO:<@:joe@example.com>"), SMTP_PARSE_BAD_PATH, SMTP_RCPT },
	{ "route with empty element",    S("RCPT TO:<@a.example,:joe@example.com>"), SMTP_PARSE_BAD_PATH, SMTP_RCPT },
	{ "route element without @",     S("RCPT TO:<@a.example,b.example:joe@example.com>"), SMTP_PARSE_BAD_PATH, SMTP_RCPT },
	{ "route with bad domain",       S("RCPT TO:<@a_b.example:joe@example.com>"), SMTP_PARSE_BAD_PATH, SMTP_RCPT },
	{ "route with literal",          S("RCPT TO:<@[192.0.2.1]:joe@example.com>"), SMTP_PARSE_BAD_PATH, SMTP_RCPT },
	{ "route with two colons",       S("RCPT TO:<@a.example:@b.example:joe@example.com>"), SMTP_PARSE_BAD_PATH, SMTP_RCPT },
};

static void
parses_each_case(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < N(cases); i++) {
		struct smtp_cmd cmd;
		enum smtp_parse_result got = smtp_parse_command(cases[i].line,
		    cases[i].len, &cmd);

		if (got != cases[i].want)
			fail_msg("%s: got %s, want %s", cases[i].name,
			    smtp_parse_result_name(got),
			    smtp_parse_result_name(cases[i].want));
		if (cmd.verb != cases[i].verb)
			fail_msg("%s: verb %s, want %s", cases[i].name,
			    smtp_verb_name(cmd.verb), smtp_verb_name(cases[i].verb));
	}
}

/* What an accepted command carries. */
static const struct {
	const char *name, *line;
	const char *arg;                /* NULL: no argument */
	const char *path;
	bool has_size;
	uint64_t size;
	enum smtp_body body;
	bool smtputf8;
} fields[] = {
	{ "EHLO domain", "EHLO client.example",
	    "client.example", "", false, 0, SMTP_BODY_7BIT, false },
	{ "HELO trailing spaces stripped", "HELO client.example   ",
	    "client.example", "", false, 0, SMTP_BODY_7BIT, false },
	{ "DATA has no argument", "DATA",
	    NULL, "", false, 0, SMTP_BODY_7BIT, false },
	{ "NOOP space only", "NOOP    ",
	    NULL, "", false, 0, SMTP_BODY_7BIT, false },
	{ "AUTH whole argument", "AUTH PLAIN AGpvZQBzZWNyZXQ=",
	    "PLAIN AGpvZQBzZWNyZXQ=", "", false, 0, SMTP_BODY_7BIT, false },
	{ "MAIL plain", "MAIL FROM:<joe@example.com>",
	    "FROM:<joe@example.com>", "joe@example.com", false, 0, SMTP_BODY_7BIT, false },
	{ "MAIL null path", "MAIL FROM:<>",
	    "FROM:<>", "", false, 0, SMTP_BODY_7BIT, false },
	{ "MAIL all parameters", "MAIL FROM: <joe@example.com> SIZE=1000 BODY=8BITMIME SMTPUTF8 ",
	    "FROM: <joe@example.com> SIZE=1000 BODY=8BITMIME SMTPUTF8",
	    "joe@example.com", true, 1000, SMTP_BODY_8BITMIME, true },
	{ "MAIL BODY=7BIT", "MAIL FROM:<joe@example.com> body=7bit",
	    "FROM:<joe@example.com> body=7bit", "joe@example.com", false, 0, SMTP_BODY_7BIT, false },
	{ "MAIL SIZE=0", "MAIL FROM:<> SIZE=0",
	    "FROM:<> SIZE=0", "", true, 0, SMTP_BODY_7BIT, false },
	{ "MAIL SIZE max", "MAIL FROM:<> SIZE=18446744073709551615",
	    "FROM:<> SIZE=18446744073709551615", "", true, UINT64_MAX, SMTP_BODY_7BIT, false },
	{ "MAIL SIZE above 64 bits saturates", "MAIL FROM:<> SIZE=99999999999999999999",
	    "FROM:<> SIZE=99999999999999999999", "", true, UINT64_MAX, SMTP_BODY_7BIT, false },
	{ "MAIL source route dropped", "MAIL FROM:<@a.example,@b.example:joe@example.com>",
	    "FROM:<@a.example,@b.example:joe@example.com>", "joe@example.com",
	    false, 0, SMTP_BODY_7BIT, false },
	{ "RCPT quoted local part", "RCPT TO:<\"joe \\\"q\\\" public\"@example.com>",
	    "TO:<\"joe \\\"q\\\" public\"@example.com>", "\"joe \\\"q\\\" public\"@example.com",
	    false, 0, SMTP_BODY_7BIT, false },
	{ "RCPT postmaster", "rcpt to:<Postmaster>",
	    "to:<Postmaster>", "Postmaster", false, 0, SMTP_BODY_7BIT, false },
	{ "RCPT UTF-8 kept as sent", "RCPT TO:<j\xc3\xb6rg@example.com>",
	    "TO:<j\xc3\xb6rg@example.com>", "j\xc3\xb6rg@example.com",
	    false, 0, SMTP_BODY_7BIT, false },
};

static void
fills_the_command(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < N(fields); i++) {
		const char *line = fields[i].line, *arg = fields[i].arg;
		struct smtp_cmd cmd;
		enum smtp_parse_result got = smtp_parse_command(line, strlen(line), &cmd);

		if (got != SMTP_PARSE_OK)
			fail_msg("%s: got %s, want SMTP_PARSE_OK", fields[i].name,
			    smtp_parse_result_name(got));
		if (arg == NULL && cmd.arg != NULL)
			fail_msg("%s: arg \"%.*s\", want none", fields[i].name,
			    (int)cmd.arg_len, cmd.arg);
		if (arg != NULL && (cmd.arg == NULL || cmd.arg_len != strlen(arg) ||
		    memcmp(cmd.arg, arg, cmd.arg_len) != 0))
			fail_msg("%s: arg \"%.*s\", want \"%s\"", fields[i].name,
			    cmd.arg ? (int)cmd.arg_len : 4, cmd.arg ? cmd.arg : "NULL", arg);
		if (cmd.arg != NULL && (cmd.arg < line || cmd.arg + cmd.arg_len > line + strlen(line)))
			fail_msg("%s: arg does not point into the line", fields[i].name);
		if (strcmp(cmd.path, fields[i].path) != 0)
			fail_msg("%s: path \"%s\", want \"%s\"", fields[i].name,
			    cmd.path, fields[i].path);
		if (cmd.has_size != fields[i].has_size || cmd.size != fields[i].size)
			fail_msg("%s: size %d/%ju, want %d/%ju", fields[i].name,
			    cmd.has_size, (uintmax_t)cmd.size,
			    fields[i].has_size, (uintmax_t)fields[i].size);
		if (cmd.body != fields[i].body || cmd.smtputf8 != fields[i].smtputf8)
			fail_msg("%s: body %d smtputf8 %d, want %d %d", fields[i].name,
			    cmd.body, cmd.smtputf8, fields[i].body, fields[i].smtputf8);
	}
}

/* What the DSN parameters leave in the command: ENVID and ORCPT as received. */
static const struct {
	const char *name, *line;
	enum dsn_ret ret;
	const char *envid;
	unsigned notify;
	const char *orcpt;
} dsn_fields[] = {
	{ "no DSN parameters", "MAIL FROM:<a@b.example> SIZE=5", DSN_RET_NONE, "", 0, "" },
	{ "RET=FULL", "MAIL FROM:<a@b.example> RET=FULL", DSN_RET_FULL, "", 0, "" },
	{ "ret=hdrs and ENVID", "MAIL FROM:<> ret=hdrs ENVID=a+2Bb", DSN_RET_HDRS, "a+2Bb", 0, "" },
	{ "RCPT without parameters", "RCPT TO:<c@d.example>", DSN_RET_NONE, "", 0, "" },
	{ "NOTIFY=NEVER", "RCPT TO:<c@d.example> NOTIFY=NEVER", DSN_RET_NONE, "",
	    DSN_NOTIFY_NEVER, "" },
	{ "NOTIFY list", "RCPT TO:<c@d.example> notify=Delay,success", DSN_RET_NONE, "",
	    DSN_NOTIFY_DELAY | DSN_NOTIFY_SUCCESS, "" },
	{ "ORCPT kept encoded", "RCPT TO:<c@d.example> ORCPT=rfc822;c+2Bx@d.example NOTIFY=FAILURE",
	    DSN_RET_NONE, "", DSN_NOTIFY_FAILURE, "rfc822;c+2Bx@d.example" },
};

static void
fills_the_dsn_parameters(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(dsn_fields); i++) {
		const char *line = dsn_fields[i].line;
		struct smtp_cmd cmd;
		enum smtp_parse_result got = smtp_parse_command(line, strlen(line), &cmd);

		if (got != SMTP_PARSE_OK)
			fail_msg("%s: got %s, want SMTP_PARSE_OK", dsn_fields[i].name,
			    smtp_parse_result_name(got));
		if (cmd.ret != dsn_fields[i].ret || cmd.notify != dsn_fields[i].notify)
			fail_msg("%s: ret %d notify %#x, want %d %#x", dsn_fields[i].name,
			    cmd.ret, cmd.notify, dsn_fields[i].ret, dsn_fields[i].notify);
		if (strcmp(cmd.envid, dsn_fields[i].envid) != 0 ||
		    strcmp(cmd.orcpt, dsn_fields[i].orcpt) != 0)
			fail_msg("%s: envid \"%s\" orcpt \"%s\", want \"%s\" \"%s\"",
			    dsn_fields[i].name, cmd.envid, cmd.orcpt, dsn_fields[i].envid,
			    dsn_fields[i].orcpt);
	}
}

/* ENVID may have DSN_ENVID_MAX octets, ORCPT's value DSN_ORCPT_MAX. */
static void
limits_dsn_lengths(void **state)
{
	static const struct {
		const char *name, *prefix;
		size_t n;
		enum smtp_parse_result want;
	} limits[] = {
		{ "ENVID of 100", "MAIL FROM:<a@b.example> ENVID=", DSN_ENVID_MAX, SMTP_PARSE_OK },
		{ "ENVID of 101", "MAIL FROM:<a@b.example> ENVID=", DSN_ENVID_MAX + 1,
		    SMTP_PARSE_BAD_PARAM },
		{ "ORCPT of 500", "RCPT TO:<a@b.example> ORCPT=rfc822;", DSN_ORCPT_MAX - 7,
		    SMTP_PARSE_OK },
		{ "ORCPT of 501", "RCPT TO:<a@b.example> ORCPT=rfc822;", DSN_ORCPT_MAX - 6,
		    SMTP_PARSE_BAD_PARAM },
	};
	char line[SMTP_LINE_MAX];

	(void)state;
	for (size_t i = 0; i < N(limits); i++) {
		size_t n = (size_t)snprintf(line, sizeof line, "%s", limits[i].prefix);
		struct smtp_cmd cmd;
		enum smtp_parse_result got;

		memset(line + n, 'x', limits[i].n);
		got = smtp_parse_command(line, n + limits[i].n, &cmd);
		if (got != limits[i].want)
			fail_msg("%s: got %s, want %s", limits[i].name, smtp_parse_result_name(got),
			    smtp_parse_result_name(limits[i].want));
		if (got == SMTP_PARSE_OK && strlen(cmd.envid) + strlen(cmd.orcpt) !=
		    limits[i].n + (cmd.orcpt[0] ? 7 : 0))
			fail_msg("%s: value not kept whole", limits[i].name);
	}
}

/* Boundaries built at run time: "MAIL FROM:<" + route + local "@" domain ">"
 * + tail, with local and domain of the given lengths. */
static const struct {
	const char *name, *verb, *route, *tail;
	size_t local, domain;
	enum smtp_parse_result want;
} lengths[] = {
	{ "path of 256",                 "MAIL FROM:", "", "", 64, 189, SMTP_PARSE_OK },
	{ "path of 257",                 "MAIL FROM:", "", "", 64, 190, SMTP_PARSE_PATH_TOO_LONG },
	{ "RCPT path of 256",            "RCPT TO:", "", "", 1, 252, SMTP_PARSE_OK },
	{ "RCPT path of 257",            "RCPT TO:", "", "", 1, 253, SMTP_PARSE_PATH_TOO_LONG },
	{ "local part of 64",            "RCPT TO:", "", "", 64, 11, SMTP_PARSE_OK },
	{ "local part of 65",            "RCPT TO:", "", "", 65, 11, SMTP_PARSE_PATH_TOO_LONG },
	{ "path of 256 with a route",    "MAIL FROM:", "@r.example:", "", 64, 178, SMTP_PARSE_OK },
	{ "path of 257 with a route",    "MAIL FROM:", "@r.example:", "", 64, 179, SMTP_PARSE_PATH_TOO_LONG },
	{ "too long beats bad param",    "MAIL FROM:", "", " FOO", 64, 190, SMTP_PARSE_PATH_TOO_LONG },
	{ "bad param beats long local",  "MAIL FROM:", "", " FOO", 65, 11, SMTP_PARSE_BAD_PARAM },
};

static void
checks_path_lengths(void **state)
{
	char line[SMTP_LINE_MAX];
	size_t i;

	(void)state;
	for (i = 0; i < N(lengths); i++) {
		size_t n = 0, k;
		struct smtp_cmd cmd;
		enum smtp_parse_result got;

		n += (size_t)snprintf(line + n, sizeof line - n, "%s<%s", lengths[i].verb,
		    lengths[i].route);
		memset(line + n, 'l', lengths[i].local);
		n += lengths[i].local;
		line[n++] = '@';
		for (k = 0; k < lengths[i].domain; k++)     /* labels of 50 */
			line[n++] = (k % 51 == 50 && k + 1 < lengths[i].domain) ? '.' : 'd';
		n += (size_t)snprintf(line + n, sizeof line - n, ">%s", lengths[i].tail);
		got = smtp_parse_command(line, n, &cmd);
		if (got != lengths[i].want)
			fail_msg("%s: got %s, want %s", lengths[i].name,
			    smtp_parse_result_name(got), smtp_parse_result_name(lengths[i].want));
		if (got == SMTP_PARSE_OK && strlen(cmd.path) != lengths[i].local + 1 +
		    lengths[i].domain)
			fail_msg("%s: path of %zu octets", lengths[i].name, strlen(cmd.path));
	}
}

static const struct {
	const char *name, *line, *want;
} replies[] = {
	{ "unknown",        "XYZZY",               "500 5.5.1 Command unrecognized" },
	{ "bad char",       "DATA \r",             "500 5.5.2 NUL, CR or LF in command line" },
	{ "HELO usage",     "HELO",                "501 5.5.4 Syntax: HELO hostname" },
	{ "EHLO usage",     "EHLO",                "501 5.5.4 Syntax: EHLO hostname" },
	{ "MAIL usage",     "MAIL FROM:joe@example.com",
	    "501 5.5.4 Syntax: MAIL FROM:<address> [SIZE=n] [BODY=7BIT|8BITMIME] [SMTPUTF8]"
	    " [RET=FULL|HDRS] [ENVID=xtext]" },
	{ "RCPT usage",     "RCPT TO:joe@example.com", "501 5.5.4 Syntax: RCPT TO:<address>"
	    " [NOTIFY=NEVER|SUCCESS,FAILURE,DELAY] [ORCPT=addr-type;xtext]" },
	{ "DATA usage",     "DATA now",            "501 5.5.4 Syntax: DATA takes no argument" },
	{ "RSET usage",     "RSET now",            "501 5.5.4 Syntax: RSET takes no argument" },
	{ "QUIT usage",     "QUIT now",            "501 5.5.4 Syntax: QUIT takes no argument" },
	{ "STARTTLS usage", "STARTTLS now",        "501 5.5.4 Syntax: STARTTLS takes no argument" },
	{ "VRFY usage",     "VRFY",                "501 5.5.4 Syntax: VRFY address" },
	{ "EXPN usage",     "EXPN",                "501 5.5.4 Syntax: EXPN list" },
	{ "AUTH usage",     "AUTH",                "501 5.5.4 Syntax: AUTH mechanism [initial-response]" },
	{ "BDAT usage",     "BDAT",                "501 5.5.4 Syntax: BDAT size [LAST]" },
	{ "MAIL bad path",  "MAIL FROM:<a..b@example.com>", "501 5.1.7 Bad sender address syntax" },
	{ "RCPT bad path",  "RCPT TO:<a..b@example.com>",   "501 5.1.3 Bad recipient address syntax" },
	{ "needs UTF-8",    "MAIL FROM:<j\xc3\xb6rg@example.com>",
	    "553 5.6.7 Non-ASCII address requires SMTPUTF8" },
	{ "MAIL bad param", "MAIL FROM:<> FOO",
	    "555 5.5.4 Unsupported or malformed MAIL FROM parameter" },
	{ "RCPT bad param", "RCPT TO:<joe@example.com> FOO",
	    "555 5.5.4 Unsupported or malformed RCPT TO parameter" },
	{ "bad NOTIFY",     "RCPT TO:<joe@example.com> NOTIFY=NEVER,SUCCESS",
	    "555 5.5.4 Unsupported or malformed RCPT TO parameter" },
	{ "bad ENVID",      "MAIL FROM:<> ENVID=+ZZ",
	    "555 5.5.4 Unsupported or malformed MAIL FROM parameter" },
};

static void
replies_to_each_error(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < N(replies); i++) {
		struct smtp_cmd cmd;
		enum smtp_parse_result r = smtp_parse_command(replies[i].line,
		    strlen(replies[i].line), &cmd);
		const char *got = smtp_parse_error_reply(r, &cmd);

		if (got == NULL || strcmp(got, replies[i].want) != 0)
			fail_msg("%s: got \"%s\" (%s), want \"%s\"", replies[i].name,
			    got ? got : "NULL", smtp_parse_result_name(r), replies[i].want);
	}
}

/* Every error has a reply "ddd d.d.d text" whatever the verb; OK has none. */
static void
replies_are_well_formed(void **state)
{
	struct smtp_cmd cmd;
	int r, v;

	(void)state;
	memset(&cmd, 0, sizeof cmd);
	for (r = SMTP_PARSE_UNKNOWN; r < SMTP_PARSE_RESULT_COUNT; r++) {
		for (v = 0; v <= SMTP_VERB_COUNT; v++) {
			const char *got;

			cmd.verb = (enum smtp_verb)v;
			got = smtp_parse_error_reply((enum smtp_parse_result)r, &cmd);
			if (got == NULL || strlen(got) < 10 || got[3] != ' ' ||
			    (got[0] != '5') || got[4] != '5' || got[5] != '.')
				fail_msg("%s for %s: \"%s\"", smtp_parse_result_name(r),
				    smtp_verb_name(cmd.verb), got ? got : "NULL");
		}
		assert_non_null(smtp_parse_error_reply((enum smtp_parse_result)r, NULL));
	}
	assert_null(smtp_parse_error_reply(SMTP_PARSE_OK, &cmd));
	assert_string_equal(smtp_parse_error_reply(SMTP_PARSE_SYNTAX, NULL),
	    "501 5.5.4 Syntax error");
	assert_string_equal(smtp_parse_error_reply(SMTP_PARSE_PATH_TOO_LONG, NULL),
	    "501 5.1.3 Path too long");
}

static void
names_every_verb_and_result(void **state)
{
	int a, b;

	(void)state;
	for (a = 0; a < SMTP_VERB_COUNT; a++) {
		assert_string_not_equal(smtp_verb_name((enum smtp_verb)a), "?");
		for (b = 0; b < a; b++)
			assert_string_not_equal(smtp_verb_name((enum smtp_verb)a),
			    smtp_verb_name((enum smtp_verb)b));
	}
	assert_string_equal(smtp_verb_name(SMTP_VERB_COUNT), "?");
	for (a = 0; a < SMTP_PARSE_RESULT_COUNT; a++) {
		const char *name = smtp_parse_result_name((enum smtp_parse_result)a);

		assert_true(strncmp(name, "SMTP_PARSE_", 11) == 0);
		assert_string_not_equal(name, "SMTP_PARSE_?");
		for (b = 0; b < a; b++)
			assert_string_not_equal(name,
			    smtp_parse_result_name((enum smtp_parse_result)b));
	}
	assert_string_equal(smtp_parse_result_name(SMTP_PARSE_RESULT_COUNT), "SMTP_PARSE_?");
	assert_string_equal(smtp_verb_name(SMTP_MAIL), "MAIL");
	assert_string_equal(smtp_parse_result_name(SMTP_PARSE_SYNTAX), "SMTP_PARSE_SYNTAX");
}

/* The parser must not read past len: the octets after it are a trap. */
static void
stops_at_len(void **state)
{
	static const char line[] = "DATA\r\nMAIL FROM:<a@b.example>";
	struct smtp_cmd cmd;

	(void)state;
	assert_int_equal(smtp_parse_command(line, 4, &cmd), SMTP_PARSE_OK);
	assert_int_equal(cmd.verb, SMTP_DATA);
	assert_int_equal(smtp_parse_command("RCPT TO:<a@b.example>", 20, &cmd),
	    SMTP_PARSE_SYNTAX);
	assert_int_equal(smtp_parse_command("QUITTING", 4, &cmd), SMTP_PARSE_OK);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_each_case),
		cmocka_unit_test(fills_the_command),
		cmocka_unit_test(fills_the_dsn_parameters),
		cmocka_unit_test(limits_dsn_lengths),
		cmocka_unit_test(checks_path_lengths),
		cmocka_unit_test(replies_to_each_error),
		cmocka_unit_test(replies_are_well_formed),
		cmocka_unit_test(names_every_verb_and_result),
		cmocka_unit_test(stops_at_len),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
