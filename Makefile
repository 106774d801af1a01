# mailredir - build, test, fuzz, install.  See README.md.
#
#   make            build/mailredir and the sendmail/mailq symlinks
#   make run        install deps, build, serve in the foreground on etc/mailredir.conf
#   make check      install deps, build, unit + integration tests + short fuzz runs
#   make asan       the same suites against an ASan+UBSan build (clang)
#   make fuzz       build the libFuzzer harnesses (build-fuzz/)
#   make install    PREFIX=/usr/local DESTDIR=
#   make bench      mailredir beside a private Postfix (bench/run; root; not in check)

SHELL   := /bin/bash
PREFIX  ?= /usr/local
DESTDIR ?=
SBINDIR  = $(PREFIX)/sbin
BINDIR   = $(PREFIX)/bin
MANDIR   = $(PREFIX)/share/man
PYTHON  ?= /usr/bin/python3
FUZZ_RUNS ?= 50000

PKGS    = openssl libevent libevent_pthreads inih libgsasl libcrypt
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread

WARN     = -Wall -Wextra -Werror -Wformat=2 -Wno-format-nonliteral -Wshadow \
           -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith -Wvla
HARDEN   = -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
BASE     = -std=c17 -D_GNU_SOURCE -Isrc $(WARN) $(PKG_CFLAGS)
CFLAGS  ?= -O2 -g
ALL_CFLAGS  = $(BASE) $(HARDEN) $(CFLAGS)
ALL_LDFLAGS = -pie -Wl,-z,relro,-z,now $(LDFLAGS)

SRCS     = $(sort $(wildcard src/*.c))
LIB_SRCS = $(filter-out src/main.c,$(SRCS))
UNIT_SRCS = $(sort $(wildcard tests/unit/test_*.c))
FUZZ_SRCS = $(sort $(wildcard tests/fuzz/fuzz_*.c))

B        = build
LIB_OBJS = $(LIB_SRCS:src/%.c=$(B)/obj/%.o)
UNIT_BINS = $(UNIT_SRCS:tests/unit/%.c=$(B)/tests/%)

.PHONY: all deps run check unit integration fuzz fuzz-run asan install clean bench
all: $(B)/mailredir $(B)/sendmail $(B)/mailq

deps:
	@tools/install-deps

$(B)/obj/%.o: src/%.c $(wildcard src/*.h) | $(B)/obj
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(B)/libmailredir.a: $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(B)/mailredir: $(B)/obj/main.o $(B)/libmailredir.a
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(B)/sendmail $(B)/mailq: | $(B)/mailredir
	ln -sf mailredir $@

$(B)/tests/%: tests/unit/%.c $(B)/libmailredir.a | $(B)/tests
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(B)/libmailredir.a $(PKG_LIBS) -lcmocka

$(B)/obj $(B)/tests:
	mkdir -p $@

run: deps all
	mkdir -p var/spool
	$(B)/mailredir serve --foreground -c etc/mailredir.conf

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

integration: all
	MAILREDIR_BIN=$(abspath $(B)/mailredir) $(PYTHON) -m pytest -q tests/integration

check: deps
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) integration
	$(MAKE) fuzz-run

# --- libFuzzer (clang) -------------------------------------------------------
FB = build-fuzz
FUZZ_CFLAGS = $(BASE) -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer
FUZZ_LIB_OBJS = $(LIB_SRCS:src/%.c=$(FB)/obj/%.o)
FUZZ_BINS = $(FUZZ_SRCS:tests/fuzz/%.c=$(FB)/%)

$(FB)/obj/%.o: src/%.c $(wildcard src/*.h) | $(FB)/obj
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FB)/lib.a: $(FUZZ_LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(FB)/fuzz_%: tests/fuzz/fuzz_%.c $(wildcard tests/fuzz/*.h) $(FB)/lib.a
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FB)/lib.a $(PKG_LIBS)

$(FB)/obj:
	mkdir -p $@

fuzz: $(FUZZ_BINS)

# Each harness runs a fixed number of iterations over its seed corpus in the
# repository; new inputs go to a scratch directory, never into the repository.
fuzz-run: fuzz
	@set -eo pipefail; for f in $(FUZZ_BINS); do n=$${f#$(FB)/fuzz_}; \
	  mkdir -p $(FB)/corpus/$$n; echo "== $$f ($(FUZZ_RUNS) runs)"; \
	  $$f -runs=$(FUZZ_RUNS) -max_len=4096 -timeout=10 $(FB)/corpus/$$n tests/fuzz/corpus/$$n 2>&1 | tail -n 2; \
	done

# --- ASan + UBSan: the same unit and integration suites ------------------------
AB = build-asan
asan: deps
	$(MAKE) B=$(AB) CC=clang CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	  LDFLAGS="-fsanitize=address,undefined" HARDEN="" all unit
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  MAILREDIR_BIN=$(abspath $(AB)/mailredir) $(PYTHON) -m pytest -q tests/integration

# --- benchmark: smtp-source -> mailredir / a private Postfix -> smtp-sink ------
# BENCH_ARGS=--quick for a smoke run; bench/run --help for the rest.
bench: deps all
	$(PYTHON) bench/run --mailredir $(abspath $(B)/mailredir) $(BENCH_ARGS)

# --- install ------------------------------------------------------------------
install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5
	install -m 0755 $(B)/mailredir $(DESTDIR)$(SBINDIR)/mailredir
	ln -sf mailredir $(DESTDIR)$(SBINDIR)/sendmail
	ln -sf ../sbin/mailredir $(DESTDIR)$(BINDIR)/mailq
	install -m 0644 doc/mailredir.8 $(DESTDIR)$(MANDIR)/man8/mailredir.8
	install -m 0644 doc/mailredir.conf.5 $(DESTDIR)$(MANDIR)/man5/mailredir.conf.5
	install -d $(DESTDIR)/etc
	[ -e $(DESTDIR)/etc/mailredir.conf ] || install -m 0644 etc/mailredir.conf.example $(DESTDIR)/etc/mailredir.conf
	@# The daemon creates the spool and hands it to this user at its first start.
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && ! id mailredir >/dev/null 2>&1; then \
	  useradd --system --home-dir /var/spool/mailredir --no-create-home \
	    --shell /usr/sbin/nologin mailredir; \
	fi

clean:
	rm -rf build build-asan build-fuzz
