/* relay.c - the latency floor's broker stand-in: connects to the echo
 * process (port in argv[1]), accepts one connection on an ephemeral
 * loopback port (printed on stdout), and forwards bytes both ways with
 * poll() until either side closes. A call through it makes the same four
 * loopback hops as a brokered call: caller -> relay -> echo -> relay ->
 * caller. See bench/README.md. */
#include <poll.h>

#include "floor.h"

static int pump(int from, int to)
{
    char buf[65536];
    ssize_t n = read(from, buf, sizeof buf);
    if (n <= 0)
        return -1;
    for (ssize_t off = 0; off < n;) {
        ssize_t w = write(to, buf + off, (size_t)(n - off));
        if (w <= 0)
            return -1;
        off += w;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: relay ECHO_PORT\n");
        return 2;
    }
    int up = connect_port(atoi(argv[1]));
    int down = listen_accept_one();
    struct pollfd p[2] = { { .fd = down, .events = POLLIN }, { .fd = up, .events = POLLIN } };
    for (;;) {
        if (poll(p, 2, -1) < 0)
            return 1;
        if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) && pump(down, up) != 0)
            return 0;
        if ((p[1].revents & (POLLIN | POLLHUP | POLLERR)) && pump(up, down) != 0)
            return 0;
    }
}
