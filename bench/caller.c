/* caller.c - the latency floor's client: connects to the relay (port in
 * argv[1]), then sends a 16-byte request and waits for its 16-byte echo,
 * sequentially, argv[2] times (default 20000) after 1000 unrecorded
 * warm-up round trips; prints one JSON line with p50/p99/p99.9 in
 * microseconds. See bench/README.md. */
#include <time.h>

#include "floor.h"

static unsigned long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000;
}

static int cmp(const void *a, const void *b)
{
    unsigned long long x = *(const unsigned long long *)a, y = *(const unsigned long long *)b;
    return x < y ? -1 : x > y;
}

static unsigned long long pct(const unsigned long long *s, long n, double q)
{
    long rank = (long)(q * (double)n + 0.999999);
    return s[rank <= 0 ? 0 : (rank > n ? n - 1 : rank - 1)];
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: caller RELAY_PORT [COUNT]\n");
        return 2;
    }
    long n = argc > 2 ? atol(argv[2]) : 20000, warm = 1000;
    if (n < 1)
        return 2;
    int s = connect_port(atoi(argv[1]));
    unsigned long long *lat = calloc((size_t)n, sizeof *lat), t_all = 0;
    char req[16], rsp[16];
    memset(req, 'r', sizeof req);
    for (long i = 0; i < warm + n; i++) {
        if (i == warm)
            t_all = now_us();
        unsigned long long t0 = now_us();
        if (write(s, req, sizeof req) != (ssize_t)sizeof req) {
            perror("write");
            return 1;
        }
        for (size_t got = 0; got < sizeof rsp;) {
            ssize_t r = read(s, rsp + got, sizeof rsp - got);
            if (r <= 0) {
                perror("read");
                return 1;
            }
            got += (size_t)r;
        }
        if (i >= warm)
            lat[i - warm] = now_us() - t0;
    }
    t_all = now_us() - t_all;
    qsort(lat, (size_t)n, sizeof *lat, cmp);
    printf("{\"mode\":\"tcp-relay-floor\",\"count\":%ld,\"p50_us\":%llu,\"p99_us\":%llu,"
           "\"p999_us\":%llu,\"min_us\":%llu,\"max_us\":%llu,\"round_trips_per_s\":%.1f}\n",
           n, pct(lat, n, 0.5), pct(lat, n, 0.99), pct(lat, n, 0.999), lat[0], lat[n - 1],
           t_all > 0 ? (double)n * 1e6 / (double)t_all : 0.0);
    close(s);
    return 0;
}
