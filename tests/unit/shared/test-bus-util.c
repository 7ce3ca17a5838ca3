/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* bus-util over direct (peer-to-peer) sd-bus connections on local sockets: no bus
 * daemon, no network. The server end runs in a thread of this process. */

#include <signal.h>
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <systemd/sd-id128.h>

#include "bus-util.h"
#include "check-main.h"
#include "log.h"
#include "string-util.h"

#define UNPRIVILEGED_UID ((uid_t) 65534)

typedef struct Server {
        int fd;                 /* connected socket, or a listening one if listening */
        bool listening;
        atomic_bool stop;
        pthread_t thread;
} Server;

static const uid_t allowed_uids[] = { 4242 };

static int method_check_uid(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        int r;

        r = bus_check_sender_uid(m, allowed_uids, ELEMENTSOF(allowed_uids), error);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(m, "s", "granted");
}

static const sd_bus_vtable test_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("CheckUid", "", "s", method_check_uid, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

static void* server_thread(void *userdata) {
        Server *s = userdata;
        sd_bus *bus = NULL;
        sd_id128_t id;
        int fd = s->fd;

        if (s->listening) {
                fd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0)
                        return NULL;
        }

        if (sd_bus_new(&bus) < 0 ||
            sd_bus_set_fd(bus, fd, fd) < 0 ||
            sd_id128_randomize(&id) < 0 ||
            sd_bus_set_server(bus, 1, id) < 0 ||
            bus_log_control_api_register(bus) < 0 ||
            sd_bus_add_object_vtable(bus, NULL, "/test", "ch.webtrend.Mailsec.Test", test_vtable, NULL) < 0 ||
            sd_bus_start(bus) < 0)
                goto finish;

        while (!atomic_load(&s->stop)) {
                int r = sd_bus_process(bus, NULL);
                if (r < 0)
                        break;          /* peer went away */
                if (r > 0)
                        continue;
                (void) sd_bus_wait(bus, 20 * USEC_PER_MSEC);
        }

finish:
        sd_bus_flush_close_unref(bus);
        return NULL;
}

static sd_bus* client_over_pair(Server *s) {
        sd_bus *bus = NULL;
        int pair[2];

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
        *s = (Server) { .fd = pair[0] };
        ck_assert_int_eq(pthread_create(&s->thread, NULL, server_thread, s), 0);

        ck_assert_int_ge(sd_bus_new(&bus), 0);
        ck_assert_int_ge(sd_bus_set_fd(bus, pair[1], pair[1]), 0);
        ck_assert_int_ge(sd_bus_start(bus), 0);
        return bus;
}

static void server_stop(Server *s) {
        atomic_store(&s->stop, true);
        ck_assert_int_eq(pthread_join(s->thread, NULL), 0);
}

static char* get_string_property(sd_bus *bus, const char *name) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        char *v = NULL;
        int r;

        r = sd_bus_get_property_string(bus, NULL, "/org/freedesktop/LogControl1",
                                       "org.freedesktop.LogControl1", name, &error, &v);
        ck_assert_msg(r >= 0, "Get %s: %s", name, error.message);
        sd_bus_error_free(&error);
        return v;
}

START_TEST(test_log_control)
{
        sd_bus_error error = SD_BUS_ERROR_NULL;
        Server s;
        sd_bus *bus;
        char *v;
        int r;

        log_set_max_level(LOG_INFO);
        log_set_target(LOG_TARGET_CONSOLE);
        log_set_identifier("mailsec-test");

        bus = client_over_pair(&s);

        v = get_string_property(bus, "LogLevel");
        ck_assert_str_eq(v, "info");
        free(v);
        v = get_string_property(bus, "LogTarget");
        ck_assert_str_eq(v, "console");
        free(v);
        v = get_string_property(bus, "SyslogIdentifier");
        ck_assert_str_eq(v, "mailsec-test");
        free(v);

        /* We are the same uid as the server end: a privileged caller. */
        r = sd_bus_set_property(bus, NULL, "/org/freedesktop/LogControl1", "org.freedesktop.LogControl1",
                                "LogLevel", &error, "s", "debug");
        ck_assert_msg(r >= 0, "Set LogLevel: %s", error.message);
        ck_assert_int_eq(log_get_max_level(), LOG_DEBUG);
        v = get_string_property(bus, "LogLevel");
        ck_assert_str_eq(v, "debug");
        free(v);

        r = sd_bus_set_property(bus, NULL, "/org/freedesktop/LogControl1", "org.freedesktop.LogControl1",
                                "LogTarget", &error, "s", "null");
        ck_assert_msg(r >= 0, "Set LogTarget: %s", error.message);
        ck_assert_int_eq(log_get_target(), LOG_TARGET_NULL);

        /* Bad values are refused and change nothing. */
        r = sd_bus_set_property(bus, NULL, "/org/freedesktop/LogControl1", "org.freedesktop.LogControl1",
                                "LogLevel", &error, "s", "chatty");
        ck_assert_int_lt(r, 0);
        ck_assert(sd_bus_error_has_name(&error, SD_BUS_ERROR_INVALID_ARGS));
        sd_bus_error_free(&error);
        ck_assert_int_eq(log_get_max_level(), LOG_DEBUG);

        r = sd_bus_set_property(bus, NULL, "/org/freedesktop/LogControl1", "org.freedesktop.LogControl1",
                                "LogTarget", &error, "s", "file");
        ck_assert_int_lt(r, 0);
        ck_assert(sd_bus_error_has_name(&error, SD_BUS_ERROR_INVALID_ARGS));
        sd_bus_error_free(&error);
        ck_assert_int_eq(log_get_target(), LOG_TARGET_NULL);

        /* SyslogIdentifier is read-only. */
        r = sd_bus_set_property(bus, NULL, "/org/freedesktop/LogControl1", "org.freedesktop.LogControl1",
                                "SyslogIdentifier", &error, "s", "other");
        ck_assert_int_lt(r, 0);
        ck_assert(sd_bus_error_has_name(&error, SD_BUS_ERROR_PROPERTY_READ_ONLY));
        sd_bus_error_free(&error);

        sd_bus_flush_close_unref(bus);
        server_stop(&s);
}
END_TEST

START_TEST(test_unprivileged_caller)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char dir[] = "/tmp/test-bus-util-XXXXXX";
        Server s = {};
        pid_t pid;
        int fd, status;

        if (geteuid() != 0) {
                fprintf(stderr, "Not root, cannot test an unprivileged peer; skipping this test.\n");
                return;
        }

        log_set_max_level(LOG_INFO);

        ck_assert_ptr_nonnull(mkdtemp(dir));
        ck_assert_int_eq(chmod(dir, 0755), 0);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/bus", dir);

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr*) &sa, sizeof(sa)), 0);
        ck_assert_int_eq(chmod(sa.sun_path, 0666), 0);
        ck_assert_int_eq(listen(fd, 1), 0);

        /* Fork before any thread exists. The child connects as nobody; the kernel records
         * its credentials at connect(), and that is what sd-bus checks. */
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                sd_bus_error error = SD_BUS_ERROR_NULL;
                sd_bus_message *reply = NULL;
                _cleanup_free_ char *address = NULL;
                sd_bus *bus = NULL;
                int r;

                if (setresgid(UNPRIVILEGED_UID, UNPRIVILEGED_UID, UNPRIVILEGED_UID) < 0 ||
                    setresuid(UNPRIVILEGED_UID, UNPRIVILEGED_UID, UNPRIVILEGED_UID) < 0)
                        _exit(10);
                if (asprintf_safe(&address, "unix:path=%s", sa.sun_path) < 0 ||
                    sd_bus_new(&bus) < 0 || sd_bus_set_address(bus, address) < 0 || sd_bus_start(bus) < 0)
                        _exit(11);

                /* Reading LogControl1 is for everyone ... */
                r = sd_bus_get_property(bus, NULL, "/org/freedesktop/LogControl1",
                                        "org.freedesktop.LogControl1", "LogLevel", &error, &reply, "s");
                if (r < 0)
                        _exit(12);
                reply = sd_bus_message_unref(reply);

                /* ... writing it is not. */
                r = sd_bus_set_property(bus, NULL, "/org/freedesktop/LogControl1", "org.freedesktop.LogControl1",
                                        "LogLevel", &error, "s", "debug");
                if (r >= 0)
                        _exit(13);
                if (!sd_bus_error_has_name(&error, SD_BUS_ERROR_ACCESS_DENIED))
                        _exit(14);
                sd_bus_error_free(&error);

                /* bus_check_sender_uid() refuses uids not in its list. */
                r = sd_bus_call_method(bus, NULL, "/test", "ch.webtrend.Mailsec.Test", "CheckUid", &error,
                                       &reply, "");
                if (r >= 0)
                        _exit(15);
                if (!sd_bus_error_has_name(&error, SD_BUS_ERROR_ACCESS_DENIED))
                        _exit(16);

                sd_bus_flush_close_unref(bus);
                _exit(0);
        }

        s.fd = fd;
        s.listening = true;
        ck_assert_int_eq(pthread_create(&s.thread, NULL, server_thread, &s), 0);

        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        server_stop(&s);
        close(fd);
        (void) unlink(sa.sun_path);
        (void) rmdir(dir);

        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 0);
        /* The refused write changed nothing. */
        ck_assert_int_eq(log_get_max_level(), LOG_INFO);
}
END_TEST

START_TEST(test_check_uid_root)
{
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        const char *answer;
        Server s;
        sd_bus *bus;
        int r;

        if (geteuid() != 0) {
                fprintf(stderr, "Not root; uid 0 is the case under test; skipping this test.\n");
                return;
        }

        bus = client_over_pair(&s);
        r = sd_bus_call_method(bus, NULL, "/test", "ch.webtrend.Mailsec.Test", "CheckUid", &error, &reply, "");
        ck_assert_msg(r >= 0, "CheckUid: %s", error.message);
        ck_assert_int_ge(sd_bus_message_read(reply, "s", &answer), 0);
        ck_assert_str_eq(answer, "granted");
        sd_bus_message_unref(reply);

        sd_bus_flush_close_unref(bus);
        server_stop(&s);
}
END_TEST

/* bus_event_loop_with_idle() without a bus: a timer plays the part of work. */

typedef struct IdleState {
        unsigned ticks;
        unsigned busy_ticks;    /* check_idle() says "busy" until this many ticks */
} IdleState;

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        IdleState *st = userdata;

        st->ticks++;
        if (st->ticks >= st->busy_ticks)
                return sd_event_source_set_enabled(s, SD_EVENT_OFF);
        return sd_event_source_set_time_relative(s, 10 * USEC_PER_MSEC);
}

static bool check_idle(void *userdata) {
        IdleState *st = userdata;

        return st->ticks >= st->busy_ticks;
}

START_TEST(test_idle_loop)
{
        IdleState st = { .busy_ticks = 5 };
        sd_event_source *timer = NULL;
        sd_event *e = NULL;
        usec_t start, elapsed;
        int r;

        ck_assert_int_ge(sd_event_new(&e), 0);
        ck_assert_int_ge(sd_event_add_time_relative(e, &timer, CLOCK_MONOTONIC, 10 * USEC_PER_MSEC, 0,
                                                    on_tick, &st), 0);
        ck_assert_int_ge(sd_event_source_set_enabled(timer, SD_EVENT_ON), 0);

        start = now(CLOCK_MONOTONIC);
        r = bus_event_loop_with_idle(e, NULL, NULL, 200 * USEC_PER_MSEC, check_idle, &st);
        elapsed = now(CLOCK_MONOTONIC) - start;

        ck_assert_int_eq(r, 0);
        /* It did not leave while busy, and it left after being idle for the timeout. */
        ck_assert_uint_ge(st.ticks, 5);
        ck_assert_uint_ge(elapsed, 200 * USEC_PER_MSEC);
        ck_assert_uint_lt(elapsed, 5 * USEC_PER_SEC);

        sd_event_source_unref(timer);
        sd_event_unref(e);
}
END_TEST

typedef struct SignalPlan {
        IdleState *st;
        unsigned n_signals;     /* SIGTERMs raised, one per tick from the first tick on */
        unsigned raised;
} SignalPlan;

static int on_tick_and_signal(sd_event_source *s, uint64_t usec, void *userdata) {
        SignalPlan *p = userdata;

        if (p->raised < p->n_signals) {
                p->raised++;
                ck_assert_int_eq(raise(SIGTERM), 0);
        }
        return on_tick(s, usec, p->st);
}

START_TEST(test_idle_loop_sigterm_drains)
{
        IdleState st = { .busy_ticks = 8 };
        SignalPlan plan = { .st = &st, .n_signals = 1 };
        sd_event_source *timer = NULL;
        sd_event *e = NULL;
        usec_t start, elapsed;

        /* SIGTERM while busy: the loop stays until the work is done, then returns 0 at
         * once, without waiting for the idle timeout. */
        ck_assert_int_ge(sd_event_new(&e), 0);
        ck_assert_int_ge(sd_event_add_time_relative(e, &timer, CLOCK_MONOTONIC, 10 * USEC_PER_MSEC, 0,
                                                    on_tick_and_signal, &plan), 0);
        ck_assert_int_ge(sd_event_source_set_enabled(timer, SD_EVENT_ON), 0);
        start = now(CLOCK_MONOTONIC);
        ck_assert_int_eq(bus_event_loop_with_idle(e, NULL, NULL, 30 * USEC_PER_SEC, check_idle, &st), 0);
        elapsed = now(CLOCK_MONOTONIC) - start;

        ck_assert_uint_eq(plan.raised, 1);
        ck_assert_uint_eq(st.ticks, 8);
        ck_assert_uint_lt(elapsed, 10 * USEC_PER_SEC);

        sd_event_source_unref(timer);
        sd_event_unref(e);
}
END_TEST

START_TEST(test_idle_loop_second_sigterm)
{
        IdleState st = { .busy_ticks = 1000 };
        SignalPlan plan = { .st = &st, .n_signals = 2 };
        sd_event_source *timer = NULL;
        sd_event *e = NULL;

        /* A second SIGTERM does not wait for the work. */
        ck_assert_int_ge(sd_event_new(&e), 0);
        ck_assert_int_ge(sd_event_add_time_relative(e, &timer, CLOCK_MONOTONIC, 10 * USEC_PER_MSEC, 0,
                                                    on_tick_and_signal, &plan), 0);
        ck_assert_int_ge(sd_event_source_set_enabled(timer, SD_EVENT_ON), 0);
        ck_assert_int_eq(bus_event_loop_with_idle(e, NULL, NULL, 30 * USEC_PER_SEC, check_idle, &st), 0);
        ck_assert_uint_eq(plan.raised, 2);
        ck_assert_uint_lt(st.ticks, 10);

        sd_event_source_unref(timer);
        sd_event_unref(e);
}
END_TEST

static int on_exit_now(sd_event_source *s, uint64_t usec, void *userdata) {
        return sd_event_exit(sd_event_source_get_event(s), 42);
}

START_TEST(test_idle_loop_exit_code)
{
        sd_event *e = NULL;

        /* An exit requested by the service (e.g. SIGTERM) ends the loop with its code. */
        ck_assert_int_ge(sd_event_new(&e), 0);
        ck_assert_int_ge(sd_event_add_time_relative(e, NULL, CLOCK_MONOTONIC, 1, 0, on_exit_now, NULL), 0);
        ck_assert_int_eq(bus_event_loop_with_idle(e, NULL, NULL, 10 * USEC_PER_SEC, NULL, NULL), 42);
        sd_event_unref(e);
}
END_TEST

static Suite* bus_util_suite(void) {
        Suite *s = suite_create("bus-util");
        TCase *tc;

        tc = tcase_create("log-control");
        tcase_add_test(tc, test_log_control);
        tcase_add_test(tc, test_unprivileged_caller);
        tcase_add_test(tc, test_check_uid_root);
        tcase_set_timeout(tc, 20);
        suite_add_tcase(s, tc);

        tc = tcase_create("idle-loop");
        tcase_add_test(tc, test_idle_loop);
        tcase_add_test(tc, test_idle_loop_exit_code);
        tcase_add_test(tc, test_idle_loop_sigterm_drains);
        tcase_add_test(tc, test_idle_loop_second_sigterm);
        tcase_set_timeout(tc, 20);
        suite_add_tcase(s, tc);

        return s;
}

CHECK_MAIN(bus_util_suite);
