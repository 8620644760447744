/*
 * cni-hwol's exec'd front, the client side of the warm executor.
 *
 * kubelet (or Multus, or cnitool) execs this on every pod event. A Python
 * process needs ~15 ms to start before it can say anything; this one needs
 * 0.7 ms from spawn to exit. It hands the invocation to the node's warm
 * executor (executor/server.py) over the protocol that executor/protocol.py
 * defines, and leaves with the status the executor's fork left with. When no
 * executor takes the invocation (none on the node, another version, a caller
 * it does not trust, no answer within 2 s), or without CNI_COMMAND (an
 * operator's command), it execs the Python executable beside it, which does
 * the work itself.
 *
 * It holds no CNI logic: every verb's answer, VERSION and errors included, is
 * the Python code's. It prints a CNI error of its own only when no Python code
 * can answer: cni-hwol-py cannot be exec'd (999), or the executor died while
 * its fork ran the verb (11, try again).
 *
 *   cc -O2 -static -DCNI_HWOL_VERSION='"0.1.0"' -o cni-hwol shim.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef CNI_HWOL_VERSION
#error "build with -DCNI_HWOL_VERSION='\"x.y.z\"' (the version of cni_hwol/__init__.py)"
#endif

/* These mirror executor/protocol.py (and the socket path, the DaemonSet's). */
#define DEFAULT_SOCKET "/run/cni-hwol/executor.sock"
#define SOCKET_ENV "CNI_HWOL_EXECUTOR_SOCKET"
#define MAGIC "cni-hwol-executor/2"
#define MAX_MESSAGE (1 << 20)
#define PASSED_FDS 5
#define START_TIMEOUT_MS 2000
#define PYTHON_EXECUTABLE "cni-hwol-py" /* the PyInstaller build, in this file's directory */
/* The build's own glibc loader and libraries (packaging/cni-hwol.spec): cni-hwol-py runs through
 * them, so it needs nothing of the node's glibc, which may be older than the build's. */
#define LIBRARY_DIR "_internal"
#define BUNDLED_LOADER LIBRARY_DIR "/ld-linux-x86-64.so.2"

extern char **environ;

/* A growing request buffer; on overflow it is marked full and the request is not sent. */
struct request {
    char data[MAX_MESSAGE];
    size_t len;
    int full;
};

static void put_field(struct request *req, const char *field) {
    size_t size = strlen(field);
    size_t need = (req->len ? 1 : 0) + size;
    if (req->full || req->len + need > sizeof req->data) {
        req->full = 1;
        return;
    }
    if (req->len)
        req->data[req->len++] = '\0'; /* fields are NUL-separated */
    memcpy(req->data + req->len, field, size);
    req->len += size;
}

/* MAGIC, version, argc, argv[1..], then KEY=VALUE per environment entry. */
static void encode_request(struct request *req, int argc, char **argv) {
    char count[16];
    req->len = 0;
    req->full = 0;
    put_field(req, MAGIC);
    put_field(req, CNI_HWOL_VERSION);
    snprintf(count, sizeof count, "%d", argc - 1);
    put_field(req, count);
    for (int i = 1; i < argc; i++)
        put_field(req, argv[i]);
    for (char **entry = environ; *entry; entry++) {
        /* As Python's os.environ: entries without a name or an '=' are not variables. */
        const char *eq = strchr(*entry, '=');
        if (eq && eq != *entry)
            put_field(req, *entry);
    }
}

static ssize_t receive(int sock, char *reply, size_t size) {
    ssize_t n;
    do
        n = recv(sock, reply, size - 1, 0);
    while (n < 0 && errno == EINTR);
    reply[n > 0 ? n : 0] = '\0';
    return n;
}

/* Whether the executor took the invocation. The executor forks only on our GO,
 * which we send only when its ACCEPTED came in time: on a timeout we hang up, an
 * ACCEPTED sent meanwhile starts nothing, and we run the verb ourselves. A GO
 * that cannot be sent means the executor is gone before it could fork. Either
 * way exactly one process runs the verb. */
static int started(int sock) {
    char reply[64];
    struct pollfd pfd = {.fd = sock, .events = POLLIN};
    int ready;
    do
        ready = poll(&pfd, 1, START_TIMEOUT_MS);
    while (ready < 0 && errno == EINTR);
    if (ready <= 0) {
        shutdown(sock, SHUT_RDWR); /* the executor sees EOF instead of a GO */
        return 0;
    }
    if (receive(sock, reply, sizeof reply) < 1 || reply[0] != 'A')
        return 0; /* refused (another version, a caller it does not trust) or gone */
    return send(sock, "G", 1, MSG_NOSIGNAL) == 1;
}

/* Leave as the fork left: with its exit status, or killed by its signal. */
static int outcome(int sock) {
    char reply[64];
    if (receive(sock, reply, sizeof reply) > 0) {
        if (reply[0] == 'E')
            return reply[1] ? atoi(reply + 1) : 1;
        if (reply[0] == 'K') {
            int signum = reply[1] ? atoi(reply + 1) : SIGKILL;
            signal(signum, SIG_DFL);
            kill(getpid(), signum);
            return 128 + signum;
        }
    }
    /* The executor went away while the verb ran: its outcome is unknown. */
    fputs("{\"cniVersion\": \"1.1.0\", \"code\": 11, \"msg\": \"the cni-hwol executor stopped while running "
          "this verb; try again\"}\n",
          stdout);
    fflush(stdout);
    return 1;
}

/* The exit status of the invocation as the executor ran it; -1 when no executor
 * took it and the Python executable must run it. */
static int delegate(int argc, char **argv) {
    static struct request req;
    const char *path = getenv(SOCKET_ENV);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int namespaces[2], status = -1;

    if (path == NULL)
        path = DEFAULT_SOCKET;
    if (path[0] == '\0' || strcmp(path, "none") == 0 || strlen(path) >= sizeof addr.sun_path)
        return -1;
    strcpy(addr.sun_path, path);
    int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (sock < 0)
        return -1;
    /* Bounds connect() (a stopped executor's full backlog) and the request's send. */
    struct timeval send_timeout = {.tv_sec = START_TIMEOUT_MS / 1000, .tv_usec = START_TIMEOUT_MS % 1000 * 1000};
    setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
    if (connect(sock, (struct sockaddr *)&addr, sizeof addr) < 0) {
        close(sock); /* no executor on this node (the common, quiet case), or one that does not accept */
        return -1;
    }
    namespaces[0] = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
    namespaces[1] = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    encode_request(&req, argc, argv);
    if (namespaces[0] >= 0 && namespaces[1] >= 0 && !req.full) {
        int fds[PASSED_FDS] = {0, 1, 2, namespaces[0], namespaces[1]};
        union {
            char buf[CMSG_SPACE(sizeof fds)];
            struct cmsghdr align;
        } control;
        struct iovec iov = {.iov_base = req.data, .iov_len = req.len};
        struct msghdr msg = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
        struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof fds);
        memcpy(CMSG_DATA(cmsg), fds, sizeof fds);
        /* A closed std stream or an oversized environment fails here: run it in Python. */
        if (sendmsg(sock, &msg, MSG_NOSIGNAL) == (ssize_t)req.len && started(sock))
            status = outcome(sock);
    }
    for (int i = 0; i < 2; i++)
        if (namespaces[i] >= 0)
            close(namespaces[i]);
    close(sock);
    return status;
}

/* Text inside a JSON string: quotes, backslashes and control characters escaped. */
static void put_json_text(const char *text) {
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
        if (*c == '"' || *c == '\\')
            printf("\\%c", *c);
        else if (*c < 0x20)
            printf("\\u%04x", *c);
        else
            putchar(*c);
    }
}

/* Replace this process by the Python executable in this file's directory: through the bundled
 * loader when the tree has one (--library-path is the loader's own, not inherited by what the
 * plugin execs), else directly (the source tree's script). */
static int exec_python(int argc, char **argv) {
    char dir[PATH_MAX] = "/proc/self/exe";
    char path[PATH_MAX + sizeof PYTHON_EXECUTABLE];
    char loader[PATH_MAX + sizeof BUNDLED_LOADER];
    char libraries[PATH_MAX + sizeof LIBRARY_DIR];
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    char *slash = n > 0 ? memrchr(dir, '/', (size_t)n) : NULL;
    if (slash) {
        *slash = '\0';
        snprintf(path, sizeof path, "%s/%s", dir, PYTHON_EXECUTABLE);
        snprintf(loader, sizeof loader, "%s/%s", dir, BUNDLED_LOADER);
        snprintf(libraries, sizeof libraries, "%s/%s", dir, LIBRARY_DIR);
        if (access(loader, X_OK) == 0 && access(path, X_OK) == 0) { /* else: 999 naming path */
            char **args = calloc((size_t)argc + 7, sizeof *args);
            if (args) {
                int i = 0;
                args[i++] = loader;
                args[i++] = "--library-path";
                args[i++] = libraries;
                args[i++] = "--argv0"; /* PyInstaller finds its archive by argv[0] under a loader */
                args[i++] = path;
                args[i++] = path;
                for (int k = 1; k < argc; k++)
                    args[i++] = argv[k];
                execv(loader, args);
            }
        } else {
            execv(path, argv);
        }
    } else {
        strcpy(path, dir);
    }
    const char *reason = strerror(errno);
    printf("{\"cniVersion\": \"1.1.0\", \"code\": 999, \"msg\": \"cni-hwol cannot run ");
    put_json_text(path);
    printf(": ");
    put_json_text(reason);
    printf("\"}\n");
    fflush(stdout);
    return 1;
}

int main(int argc, char **argv) {
    const char *command = getenv("CNI_COMMAND");
    if (command != NULL && command[0] != '\0') {
        int status = delegate(argc, argv);
        if (status >= 0)
            return status;
        /* Already tried: the Python side must not wait for an executor again. */
        setenv(SOCKET_ENV, "none", 1);
    }
    return exec_python(argc, argv);
}
