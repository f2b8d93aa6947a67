/* echo.c - the latency floor's service: accepts one connection on an
 * ephemeral loopback port (printed on stdout) and writes back every byte
 * it reads, until the peer closes. See bench/README.md. */
#include "floor.h"

int main(void)
{
    int c = listen_accept_one();
    char buf[65536];
    for (;;) {
        ssize_t n = read(c, buf, sizeof buf);
        if (n <= 0)
            return 0;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(c, buf + off, (size_t)(n - off));
            if (w <= 0)
                return 1;
            off += w;
        }
    }
}
