/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _pure_ __attribute__((pure))
#define _const_ __attribute__((const))
#define _noreturn_ __attribute__((noreturn))
#define _noinline_ __attribute__((noinline))
#define _likely_(x) (__builtin_expect(!!(x), 1))
#define _unlikely_(x) (__builtin_expect(!!(x), 0))
#define _sentinel_ __attribute__((sentinel))
#define _warn_unused_result_ __attribute__((warn_unused_result))

#define ELEMENTSOF(x)                                                            \
        (__builtin_choose_expr(                                                  \
                !__builtin_types_compatible_p(typeof(x), typeof(&*(x))),         \
                sizeof(x) / sizeof((x)[0]),                                      \
                (void) 0))

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define CLAMP(x, lo, hi) MIN(MAX((x), (lo)), (hi))

/* IN_SET(x, A, B, C): x equals one of the listed values. */
#define IN_SET(x, first, ...)                                                           \
        ({                                                                              \
                const typeof(x) _in_set_x_ = (x);                                       \
                const typeof(x) _in_set_l_[] = { first, ##__VA_ARGS__ };                \
                bool _in_set_found_ = false;                                            \
                for (size_t _in_set_i_ = 0; _in_set_i_ < ELEMENTSOF(_in_set_l_); _in_set_i_++) \
                        if (_in_set_l_[_in_set_i_] == _in_set_x_) {                     \
                                _in_set_found_ = true;                                  \
                                break;                                                  \
                        }                                                               \
                _in_set_found_;                                                         \
        })

#define STRLEN(s) (sizeof(s) - 1)
#define STRINGIFY(x) #x
#define XSTRINGIFY(x) STRINGIFY(x)

/* Hand over ownership of a pointer or fd held in a _cleanup_ variable. */
#define TAKE_PTR(p)                             \
        ({                                      \
                typeof(p) _ptr_ = (p);          \
                (p) = NULL;                     \
                _ptr_;                          \
        })
#define TAKE_FD(fd)                             \
        ({                                      \
                int _fd_ = (fd);                \
                (fd) = -1;                      \
                _fd_;                           \
        })

/* Destructor that returns NULL (foo_free style). */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                 \
        static inline void func##p(type *p) {                   \
                if (*p)                                         \
                        *p = func(*p);                          \
        }

/* Destructor that returns void (foreign libraries). */
#define DEFINE_TRIVIAL_CLEANUP_FUNC_FULL(type, func, empty)     \
        static inline void func##p(type *p) {                   \
                if (*p != (empty)) {                            \
                        func(*p);                               \
                        *p = (empty);                           \
                }                                               \
        }

#define assert_return(expr, r)                  \
        do {                                    \
                if (!(expr))                    \
                        return (r);             \
        } while (false)

/* Negative errno from a libc call that returns -1 and sets errno. */
#define RET_NERRNO(expr)                                \
        ({                                              \
                int _r_ = (expr);                       \
                _r_ < 0 ? -errno : _r_;                 \
        })

static inline int negative_errno(void) {
        return errno > 0 ? -errno : -EIO;
}

#define ABS(x) ((x) < 0 ? -(x) : (x))

/* main() from run(): negative -> EXIT_FAILURE, ERRNO= reported to the service manager. */
#define DEFINE_MAIN_FUNCTION(run)                                               \
        int main(int argc, char *argv[]) {                                      \
                int _r_ = run(argc, argv);                                      \
                if (_r_ < 0)                                                    \
                        (void) sd_notifyf(0, "ERRNO=%i", -_r_);                 \
                return _r_ < 0 ? 1 /* EXIT_FAILURE */ : _r_;                    \
        }
