// Linux headers that the Glibc module does not expose to Swift.
#ifndef POMERIUM_CLINUX_SHIM_H
#define POMERIUM_CLINUX_SHIM_H

// _GNU_SOURCE is not defined here: it changes glibc's struct definitions, which then clash with
// the same structs seen by other C modules. The few GNU functions needed are declared below.
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <netinet/tcp.h>
#include <spawn.h>

#include <sys/types.h>

// glibc declares these only under _GNU_SOURCE.
extern int accept4(int fd, struct sockaddr *_Nullable addr, socklen_t *_Nullable len, int flags);
extern int sched_getaffinity(pid_t pid, size_t size, void *_Nonnull mask);
// glibc 2.34 and later, declared in spawn.h only under _GNU_SOURCE.
extern int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *_Nonnull actions, int from);

static inline int CLinux_accept4(int fd, struct sockaddr *_Nullable addr, socklen_t *_Nullable len, int flags) {
    return accept4(fd, addr, len, flags);
}

// The number of CPUs this process may run on (sched_getaffinity), or -1 on error. The mask covers
// 1024 CPUs, as glibc's cpu_set_t does.
static inline int CLinux_available_cpu_count(void) {
    unsigned long mask[1024 / (8 * sizeof(unsigned long))] = {0};
    if (sched_getaffinity(0, sizeof(mask), mask) != 0) {
        return -1;
    }
    int count = 0;
    for (unsigned i = 0; i < sizeof(mask) / sizeof(mask[0]); i++) {
        count += __builtin_popcountl(mask[i]);
    }
    return count;
}

// errno is a thread-local macro in glibc.
#include <errno.h>
static inline int CLinux_errno(void) { return errno; }

#endif
