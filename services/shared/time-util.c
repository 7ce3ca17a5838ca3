/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "string-util.h"
#include "time-util.h"

usec_t now(clockid_t clock) {
        struct timespec ts;

        /* Only fails for an invalid clock id, which is a programming error. */
        if (clock_gettime(clock, &ts) < 0)
                abort();

        return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / 1000;
}

static const struct {
        const char *suffix;
        usec_t usec;
} time_units[] = {
        /* Longest first where one is a prefix of another ("msec" before "ms" before "m"). */
        { "seconds", USEC_PER_SEC },
        { "second",  USEC_PER_SEC },
        { "sec",     USEC_PER_SEC },
        { "s",       USEC_PER_SEC },
        { "minutes", USEC_PER_MINUTE },
        { "minute",  USEC_PER_MINUTE },
        { "min",     USEC_PER_MINUTE },
        { "msec",    USEC_PER_MSEC },
        { "ms",      USEC_PER_MSEC },
        { "m",       USEC_PER_MINUTE },
        { "hours",   USEC_PER_HOUR },
        { "hour",    USEC_PER_HOUR },
        { "hr",      USEC_PER_HOUR },
        { "h",       USEC_PER_HOUR },
        { "days",    24 * USEC_PER_HOUR },
        { "day",     24 * USEC_PER_HOUR },
        { "d",       24 * USEC_PER_HOUR },
        { "weeks",   7 * 24 * USEC_PER_HOUR },
        { "week",    7 * 24 * USEC_PER_HOUR },
        { "w",       7 * 24 * USEC_PER_HOUR },
        { "usec",    1 },
        { "us",      1 },
        { "µs",      1 },
};

static bool is_blank(char c) {
        return c == ' ' || c == '\t';
}

int parse_sec(const char *s, usec_t *ret) {
        usec_t total = 0;
        const char *p;
        bool any = false;

        if (!s)
                return -EINVAL;

        p = s;
        while (is_blank(*p))
                p++;

        if (streq(p, "infinity") || (startswith(p, "infinity") && strspn(p + 8, " \t") == strlen(p + 8))) {
                if (ret)
                        *ret = USEC_INFINITY;
                return 0;
        }

        for (;;) {
                uint64_t v = 0, frac = 0, frac_div = 1, mul = USEC_PER_SEC;
                bool digits = false;
                size_t k;

                while (is_blank(*p))
                        p++;
                if (!*p)
                        break;

                if (*p == '-' || *p == '+')
                        return -EINVAL;

                for (; *p >= '0' && *p <= '9'; p++) {
                        if (v > (UINT64_MAX - 9) / 10)
                                return -ERANGE;
                        v = v * 10 + (uint64_t) (*p - '0');
                        digits = true;
                }
                if (*p == '.') {
                        p++;
                        for (; *p >= '0' && *p <= '9'; p++) {
                                /* Six fractional digits are plenty (µs for seconds) and keep
                                 * frac * mul below 2^64 even for weeks. */
                                if (frac_div < 1000000ULL) {
                                        frac = frac * 10 + (uint64_t) (*p - '0');
                                        frac_div *= 10;
                                }
                                digits = true;
                        }
                }
                if (!digits)
                        return -EINVAL;

                while (is_blank(*p))
                        p++;

                k = 0;
                for (size_t i = 0; i < ELEMENTSOF(time_units); i++) {
                        const char *e = startswith(p, time_units[i].suffix);

                        /* A unit must be followed by a blank, a digit or the end. */
                        if (e && (*e == 0 || is_blank(*e) || (*e >= '0' && *e <= '9'))) {
                                mul = time_units[i].usec;
                                k = strlen(time_units[i].suffix);
                                break;
                        }
                }
                if (k == 0 && *p && !(*p >= '0' && *p <= '9'))
                        return -EINVAL;
                /* A number directly followed by another number, e.g. "5 3", is ambiguous. */
                if (k == 0 && any)
                        return -EINVAL;
                if (k == 0 && *p)
                        return -EINVAL;
                p += k;

                if (v > UINT64_MAX / mul)
                        return -ERANGE;
                v *= mul;
                frac = frac * mul / frac_div;   /* frac < 1e6, mul <= 1 week: < 2^63 */
                if (v > UINT64_MAX - frac)
                        return -ERANGE;
                v += frac;
                if (total > UINT64_MAX - 1 - v)
                        return -ERANGE;
                total += v;
                any = true;
        }

        if (!any)
                return -EINVAL;

        if (ret)
                *ret = total;
        return 0;
}

char* format_timespan(char *buf, size_t l, usec_t t) {
        static const struct {
                const char *suffix;
                usec_t usec;
        } table[] = {
                { "d",   24 * USEC_PER_HOUR },
                { "h",   USEC_PER_HOUR },
                { "min", USEC_PER_MINUTE },
                { "s",   USEC_PER_SEC },
                { "ms",  USEC_PER_MSEC },
                { "us",  1 },
        };
        char *p = buf;
        bool something = false;

        assert(buf);
        assert(l > 0);

        if (t == USEC_INFINITY) {
                snprintf(buf, l, "infinity");
                return buf;
        }
        if (t == 0) {
                snprintf(buf, l, "0");
                return buf;
        }

        *p = 0;
        for (size_t i = 0; i < ELEMENTSOF(table) && t > 0; i++) {
                usec_t a;
                int n;

                if (t < table[i].usec)
                        continue;

                a = t / table[i].usec;
                t -= a * table[i].usec;

                n = snprintf(p, l, "%s%llu%s", something ? " " : "", (unsigned long long) a, table[i].suffix);
                if (n < 0 || (size_t) n >= l) {
                        /* Truncated: keep what fits. */
                        buf[l - 1] = 0;
                        return buf;
                }
                p += n;
                l -= (size_t) n;
                something = true;
        }

        return buf;
}
