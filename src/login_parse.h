/* login_parse.h - POP3 and IMAP server replies as the login-before-smtp
 * client reads them (PRODUCT.md §3 `login-before-smtp`): RFC 1939 (POP3,
 * APOP), RFC 2449 (CAPA, response codes), RFC 3206 ([SYS/TEMP], [SYS/PERM],
 * [AUTH]), RFC 2595 (STLS, STARTTLS), RFC 5034 (POP3 AUTH), RFC 3501 /
 * RFC 9051 (IMAP responses), RFC 5530 (IMAP response codes), RFC 4959
 * (SASL-IR).
 *
 * Pure: no I/O, allocation, logging, clock or globals.  Every line is
 * untrusted (the ISP's server).  The I/O side (login.c) frames the lines:
 * `line` is one reply line WITHOUT its line end and need not be
 * NUL-terminated; a line of LOGIN_LINE_MAX octets or more, or with NUL, CR
 * or LF inside, is refused here as well.  Results of type struct login_span
 * point into the caller's line and are valid while it is; everything else is
 * a fixed array in the caller's struct.
 *
 * Fuzz targets: tests/fuzz/fuzz_pop3_reply.c, tests/fuzz/fuzz_imap_reply.c. */
#ifndef MAILREDIR_LOGIN_PARSE_H
#define MAILREDIR_LOGIN_PARSE_H

#include <stdbool.h>
#include <stddef.h>

/* Longest line + 1, line end excluded.  RFC 1939 §3 allows 512 octets per
 * POP3 response line with CRLF, but CAPA lines and Exchange/Gmail greetings
 * with long session ids exceed it in the wild; IMAP has no limit at all and
 * RFC 7162 §4 asks implementations to handle 8192-octet lines.  Capability
 * lines in practice are under 1 KiB (Dovecot with every plugin: ~600).  Note
 * that netio_read_line refuses lines beyond NETIO_LINE_MAX (4096) before
 * they get here. */
#define LOGIN_LINE_MAX 8192
/* Lines of one multi-line reply: a POP3 CAPA body (enforced by
 * login_pop3_caps_add), the untagged lines before a tagged IMAP reply (for
 * the I/O side to count).  A real server sends fewer than 30. */
#define LOGIN_LINES_MAX 100
#define LOGIN_MECHS_MAX 512         /* the mechanism list with its NUL, as SMTP_AUTH_MECHS_MAX */
#define LOGIN_MECH_LEN_MAX 20       /* RFC 4422 §3.1: 1..20 of [A-Z0-9-_] */
#define LOGIN_APOP_TIMESTAMP_MAX 255 /* "<...@...>" with its brackets */
#define LOGIN_CODE_MAX 64           /* a response code's text between [ and ] */
#define LOGIN_IMPLEMENTATION_MAX 128 /* POP3 "IMPLEMENTATION" text with its NUL */
#define LOGIN_IMAP_LITERAL_MAX 65536 /* a larger {n} makes the line invalid */

/* Octets of the caller's line: s == NULL means absent; present but empty
 * spans point into (or just past the end of) the line with len 0. */
struct login_span {
	const char *s;
	size_t len;
};

/* --- POP3 ------------------------------------------------------------------ */

enum login_pop3_kind {
	LOGIN_POP3_OK,              /* "+OK" [SP text]: upper case only (RFC 1939 §3) */
	LOGIN_POP3_ERR,             /* "-ERR" [SP text] */
	LOGIN_POP3_CONTINUE,        /* "+" [SP base64]: a SASL challenge (RFC 5034 §4) */
	LOGIN_POP3_INVALID,         /* anything else: "not a POP3 server" at the greeting */
};

/* RFC 2449 §8 / RFC 3206 codes, matched without regard to case, a sub-level
 * included ("[AUTH/X]" is AUTH); "[SYS]" alone and unknown codes are OTHER. */
enum login_pop3_code {
	LOGIN_POP3_CODE_NONE,
	LOGIN_POP3_CODE_IN_USE,     /* maildrop locked: try later */
	LOGIN_POP3_CODE_LOGIN_DELAY,/* logged in too recently (see login_delay below) */
	LOGIN_POP3_CODE_SYS_TEMP,   /* server-side trouble, temporary */
	LOGIN_POP3_CODE_SYS_PERM,   /* server-side trouble, lasting */
	LOGIN_POP3_CODE_AUTH,       /* the credentials were wrong */
	LOGIN_POP3_CODE_OTHER,
};

struct login_pop3_line {
	enum login_pop3_kind kind;
	enum login_pop3_code code;  /* NONE unless OK or ERR starts with one */
	struct login_span code_text;/* between the brackets, 1..LOGIN_CODE_MAX octets
	                             * of 0x21..0x7e; absent with CODE_NONE */
	struct login_span text;     /* OK/ERR: after the status, the code and the
	                             * spaces following them; CONTINUE: the payload
	                             * (base64, may be empty).  May hold any octet but
	                             * NUL, CR and LF: sanitise before logging.
	                             * Absent when INVALID. */
	const char *why;            /* INVALID: what is wrong (a static string), else NULL */
};

/* Classify one reply line.  A "[...]" right after the status is a response
 * code only when it is 1..LOGIN_CODE_MAX printable octets without a space
 * (else it stays in the text).  Returns line->kind. */
enum login_pop3_kind login_pop3_parse_line(const char *line, size_t len,
    struct login_pop3_line *);

/* The APOP timestamp of a +OK greeting (RFC 1939 §7): the last "<...>" in its
 * text that looks like a msg-id: '<', 3..LOGIN_APOP_TIMESTAMP_MAX - 2 octets
 * of 0x21..0x7e without '<' or '>' and with an '@' that is neither first nor
 * last, then '>'.  *ts gets it brackets included (what APOP digests).  false,
 * *ts absent: not an OK line, or no such timestamp (no APOP then). */
bool login_pop3_apop_timestamp(const struct login_pop3_line *greeting, struct login_span *ts);

enum login_pop3_multi {
	LOGIN_POP3_MULTI_LINE,      /* a body line: *out is it, one leading '.' removed */
	LOGIN_POP3_MULTI_END,       /* the terminating "." */
	LOGIN_POP3_MULTI_INVALID,   /* NUL, CR, LF inside, or too long: *why says so */
};

/* One line of a multi-line body after its +OK (RFC 1939 §3: dot-stuffed,
 * ".." -> "."; "." alone ends it).  *out absent unless LINE, *why NULL
 * unless INVALID. */
enum login_pop3_multi login_pop3_parse_multi(const char *line, size_t len,
    struct login_span *out, const char **why);

/* One CAPA line, unstuffed (RFC 2449 §5: capa-tag *(SP param)): the keyword
 * up to the first space (1..64 octets of 0x21..0x7e) and the arguments with
 * the spaces around them trimmed (present, maybe empty).  0, or -1 when
 * there is no such keyword or the line breaks the framing rules (both spans
 * absent then: ignore the line). */
struct login_pop3_capa {
	struct login_span keyword, args;
};
int login_pop3_parse_capa(const char *line, size_t len, struct login_pop3_capa *);

/* What a CAPA reply offers, built line by line.  Keywords match without
 * regard to case; unknown ones and unparsable lines are ignored (RFC 2449
 * §5).  Without CAPA (-ERR to it) a client assumes USER, no STLS, no SASL. */
struct login_pop3_caps {
	bool stls, user, top, uidl, pipelining, resp_codes, auth_resp_code;
	bool has_login_delay;       /* "LOGIN-DELAY n" with n readable */
	unsigned long login_delay;  /* seconds between logins the server enforces
	                             * (0..999999999; a "USER" after it = per user) */
	char mechs[LOGIN_MECHS_MAX];/* "SASL a b": upper case, space separated, each
	                             * once, valid RFC 4422 names only; a name that
	                             * does not fit is dropped; "" = no SASL */
	char implementation[LOGIN_IMPLEMENTATION_MAX]; /* for probe: printable
	                             * ASCII, other octets '?', cut to fit; "" = none */
	size_t nlines;              /* body lines added, the "." not counted */
	bool done;                  /* the "." was added */
	bool bad;                   /* an invalid line, more than LOGIN_LINES_MAX lines
	                             * or a line after the "."; stays set */
	const char *why;            /* when bad: what was wrong (a static string) */
};

void login_pop3_caps_init(struct login_pop3_caps *);
/* Add one body line (after CAPA's +OK).  Returns LINE (read on), END (the
 * "."), INVALID (caps->bad set; the reply is bad, the capabilities gathered
 * so far must not be used). */
enum login_pop3_multi login_pop3_caps_add(struct login_pop3_caps *, const char *line,
    size_t len);

/* --- IMAP ------------------------------------------------------------------ */

enum login_imap_kind {
	LOGIN_IMAP_UNTAGGED,        /* "* ...": a status (OK NO BAD PREAUTH BYE) or data */
	LOGIN_IMAP_CONTINUE,        /* "+" [SP text or base64]: send the next part */
	LOGIN_IMAP_TAGGED,          /* "<tag> OK|NO|BAD ..." with the expected tag */
	LOGIN_IMAP_INVALID,         /* anything else, a tag not expected included */
};

/* Status words match without regard to case (RFC 9051 §9). */
enum login_imap_status {
	LOGIN_IMAP_STATUS_NONE,     /* continuation or untagged data */
	LOGIN_IMAP_STATUS_OK,
	LOGIN_IMAP_STATUS_NO,
	LOGIN_IMAP_STATUS_BAD,
	LOGIN_IMAP_STATUS_PREAUTH,  /* untagged only: already logged in (greeting) */
	LOGIN_IMAP_STATUS_BYE,      /* untagged only: the server closes */
};

/* resp-text-code atoms the login acts on or reports (RFC 3501 §7.1, RFC 5530);
 * LOGINDISABLED is a capability, not a code. */
enum login_imap_code {
	LOGIN_IMAP_CODE_NONE,
	LOGIN_IMAP_CODE_ALERT,      /* the text must reach the user: log it */
	LOGIN_IMAP_CODE_CAPABILITY, /* the list is in line->caps */
	LOGIN_IMAP_CODE_UNAVAILABLE,
	LOGIN_IMAP_CODE_AUTHENTICATIONFAILED,
	LOGIN_IMAP_CODE_AUTHORIZATIONFAILED,
	LOGIN_IMAP_CODE_EXPIRED,
	LOGIN_IMAP_CODE_PRIVACYREQUIRED,
	LOGIN_IMAP_CODE_CONTACTADMIN,
	LOGIN_IMAP_CODE_INUSE,
	LOGIN_IMAP_CODE_LIMIT,
	LOGIN_IMAP_CODE_SERVERBUG,
	LOGIN_IMAP_CODE_CLIENTBUG,
	LOGIN_IMAP_CODE_OTHER,      /* any other atom: see code_name */
};

struct login_imap_line {
	enum login_imap_kind kind;
	enum login_imap_status status;
	enum login_imap_code code;  /* status responses only */
	struct login_span tag;      /* TAGGED: the tag (equal to the expected one) */
	struct login_span code_name;/* the atom inside [ ], absent with CODE_NONE */
	struct login_span code_args;/* after the atom and a space, up to ']'; absent
	                             * when there are none */
	struct login_span text;     /* status: the text after the code (may be empty);
	                             * CONTINUE: after "+ "; data: after "* " (e.g.
	                             * "CAPABILITY IMAP4rev1", "3 EXISTS").  Any octet
	                             * but NUL, CR, LF: sanitise before logging. */
	struct login_span caps;     /* "* CAPABILITY list" or "[CAPABILITY list]":
	                             * the list (maybe empty); absent otherwise */
	bool literal;               /* untagged data ending in "{n}" (or "~{n}"):
	                             * n octets follow this line, then the rest of the
	                             * same response as another line */
	size_t literal_len;         /* n, 0..LOGIN_IMAP_LITERAL_MAX */
	const char *why;            /* INVALID: what is wrong (a static string) */
};

/* Classify one reply line.  `tag` is the tag of the command in flight
 * (NUL-terminated, compared octet for octet), or NULL while none is (the
 * greeting): any tagged line is then INVALID.  A "[" after the status opens a
 * code only if a "]" closes it and the atom is valid; otherwise it stays in
 * the text.  A literal is recognised only in untagged data: in a status or
 * continuation "{5}" is text.  A literal above LOGIN_IMAP_LITERAL_MAX makes
 * the line INVALID.  Returns line->kind. */
enum login_imap_kind login_imap_parse_line(const char *line, size_t len, const char *tag,
    struct login_imap_line *);

/* Does a line end in a literal "{n}"?  For the lines that continue a response
 * after a literal's octets (they are not responses of their own and must not
 * go to login_imap_parse_line).  1 with *n set, 0 when not, -1 when the line
 * is invalid (NUL, CR, LF, too long) or n > LOGIN_IMAP_LITERAL_MAX. */
int login_imap_literal(const char *line, size_t len, size_t *n);

/* What a capability list offers (from line->caps).  Atoms match without
 * regard to case; unknown ones are ignored.  The struct is cleared first: a
 * new list replaces the old one (RFC 9051 §6.2.1: after STARTTLS or login the
 * client must forget what it knew). */
struct login_imap_caps {
	bool imap4rev1, imap4rev2, starttls, logindisabled, sasl_ir;
	char mechs[LOGIN_MECHS_MAX];/* the AUTH=name atoms, as login_pop3_caps.mechs */
};
void login_imap_caps_parse(const char *list, size_t len, struct login_imap_caps *);

/* --- names for logs and tests ---------------------------------------------- */

const char *login_pop3_kind_name(enum login_pop3_kind);    /* "ok", "err", "continue", "invalid" */
const char *login_pop3_code_name(enum login_pop3_code);    /* "IN-USE", "SYS/TEMP", "none"... */
const char *login_pop3_multi_name(enum login_pop3_multi);  /* "line", "end", "invalid" */
const char *login_imap_kind_name(enum login_imap_kind);    /* "untagged", "continue"... */
const char *login_imap_status_name(enum login_imap_status);/* "OK", "BYE", "none"... */
const char *login_imap_code_name(enum login_imap_code);    /* "ALERT", "other", "none"... */

#endif
