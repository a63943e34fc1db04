/*
 * Helper for benches/pid1.sh: timestamps and orphan-zombie lifetimes, measured
 * the same way whichever init (autopilot, tini, dumb-init) is PID 1.
 *
 *   pid1_helper launch FILE CMD [ARGS...]   append CLOCK_MONOTONIC ns to FILE, then exec CMD
 *   pid1_helper stamp FILE                  append CLOCK_MONOTONIC ns to FILE, exit 0
 *   pid1_helper zombies N FILE              N times: leave an orphan, time how long it
 *                                           stays a zombie; append each lifetime (ns) to FILE
 *
 * CLOCK_MONOTONIC is not namespaced by a PID namespace, so stamps taken inside
 * and outside the namespace compare directly.
 *
 * Zombie lifetime: the orphan takes a timestamp as the very last thing before
 * _exit() and sends it over a pipe; this process (in the same PID namespace)
 * then spins on kill(pid, 0), which succeeds for a zombie and fails with ESRCH
 * only once PID 1 has reaped it. The difference is exit -> reaped, including
 * the kernel's exit work, identical for every init.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void append(const char *file, int64_t v) {
    FILE *f = fopen(file, "a");
    if (!f) {
        perror(file);
        exit(1);
    }
    fprintf(f, "%lld\n", (long long)v);
    fclose(f);
}

static void must_read(int fd, void *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            perror("read");
            exit(1);
        }
        got += (size_t)r;
    }
}

/* One measurement: returns the orphan's zombie lifetime in ns. */
static int64_t one_orphan(void) {
    int info[2], go[2];
    if (pipe(info) || pipe(go)) {
        perror("pipe");
        exit(1);
    }
    pid_t mid = fork();
    if (mid < 0) {
        perror("fork");
        exit(1);
    }
    if (mid == 0) {
        pid_t orphan = fork();
        if (orphan == 0) {
            /* Wait until our parent is gone (we are re-parented), then exit. */
            char c;
            close(go[1]);
            must_read(go[0], &c, 1);
            int64_t t = now_ns();
            if (write(info[1], &t, sizeof t) != sizeof t) _exit(1);
            _exit(0);
        }
        if (write(info[1], &orphan, sizeof orphan) != sizeof orphan) _exit(1);
        _exit(0);
    }
    close(info[1]);
    pid_t orphan;
    must_read(info[0], &orphan, sizeof orphan);
    while (waitpid(mid, NULL, 0) < 0 && errno == EINTR) {
    }
    /* The middle process is reaped: the orphan belongs to PID 1 now. */
    close(go[0]);
    if (write(go[1], "x", 1) != 1) {
        perror("write");
        exit(1);
    }
    int64_t exited;
    must_read(info[0], &exited, sizeof exited);
    while (kill(orphan, 0) == 0 || errno != ESRCH) {
        /* spin: a zombie still answers kill(pid, 0) */
        if (now_ns() - exited > 5000000000LL) {
            fprintf(stderr, "orphan %d not reaped after 5s\n", (int)orphan);
            exit(1);
        }
    }
    int64_t reaped = now_ns();
    close(info[0]);
    close(go[1]);
    return reaped - exited;
}

int main(int argc, char **argv) {
    if (argc >= 4 && strcmp(argv[1], "launch") == 0) {
        append(argv[2], now_ns());
        execvp(argv[3], argv + 3);
        perror(argv[3]);
        return 127;
    }
    if (argc == 3 && strcmp(argv[1], "stamp") == 0) {
        append(argv[2], now_ns());
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "zombies") == 0) {
        int n = atoi(argv[2]);
        for (int i = 0; i < n; i++) {
            append(argv[3], one_orphan());
        }
        return 0;
    }
    fprintf(stderr, "usage: %s launch FILE CMD... | stamp FILE | zombies N FILE\n", argv[0]);
    return 2;
}
