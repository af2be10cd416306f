/*
 * The tiny test guest's only program (PID 1's child): dirties memory at a set rate
 * and prints a heartbeat every second on the serial console.
 *
 *   dirtier NAME RATE_MIBPS WWS_MIB RESERVE_MIB
 *
 * At start it fills all free memory but RESERVE_MIB with a non-zero pattern, so
 * that a migration sends (almost) every page of the guest and none as a zero page:
 * the model's "memory size" is then the guest's RAM. It then writes one word into
 * RATE_MIBPS * 256 pages a second, cycling through the first WWS_MIB of the filled
 * memory (the writable working set), paced on the monotonic clock. Each written
 * page keeps its sequence number, and a shadow table remembers it: every second
 * the whole working set is checked against the table, and any page that lost a
 * write (what a broken migration does) is reported as CORRUPT.
 *
 * Heartbeat line: "hb NAME SECONDS WRITES BAD" (BAD counts corrupt pages so far).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define MIB (1024UL * 1024UL)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned long mem_free_mib(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    unsigned long kib = 0;
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemFree: %lu kB", &kib) == 1)
            break;
    fclose(f);
    return kib / 1024;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: dirtier NAME RATE_MIBPS WWS_MIB RESERVE_MIB\n");
        return 2;
    }
    const char *name = argv[1];
    double rate = atof(argv[2]);
    unsigned long wws = strtoul(argv[3], NULL, 10);
    unsigned long reserve = strtoul(argv[4], NULL, 10);
    unsigned long freemib = mem_free_mib();
    unsigned long fill = freemib > reserve + wws ? freemib - reserve : wws;

    unsigned long pages = wws * MIB / PAGE;
    uint64_t *shadow = calloc(pages ? pages : 1, sizeof *shadow);
    unsigned char *mem = malloc(fill * MIB);
    if (!mem || !shadow) {
        printf("dirtier %s: cannot allocate %lu MiB\n", name, fill);
        fflush(stdout);
        for (;;)
            pause();
    }
    memset(mem, 0x5a, fill * MIB);
    for (unsigned long i = 0; i < pages; i++) {
        shadow[i] = i + 1;
        *(uint64_t *)(mem + i * PAGE) = i + 1;
    }
    printf("ready %s rate=%.1f wws=%lu fill=%lu free=%lu\n", name, rate, wws, fill, freemib);
    fflush(stdout);

    double t0 = now(), next_beat = t0 + 1.0;
    uint64_t writes = 0, seq = pages + 1, bad = 0;
    unsigned long cursor = 0;
    struct timespec tick = {0, 5 * 1000 * 1000};
    for (;;) {
        double t = now();
        if (pages && rate > 0) {
            uint64_t due = (uint64_t)((t - t0) * rate * (MIB / PAGE));
            while (writes < due) {
                *(uint64_t *)(mem + cursor * PAGE) = seq;
                shadow[cursor] = seq++;
                cursor = (cursor + 1) % pages;
                writes++;
            }
        }
        if (t >= next_beat) {
            for (unsigned long i = 0; i < pages; i++)
                if (*(uint64_t *)(mem + i * PAGE) != shadow[i]) {
                    bad++;
                    printf("CORRUPT %s page %lu has %llu, wrote %llu\n", name, i,
                           (unsigned long long)*(uint64_t *)(mem + i * PAGE),
                           (unsigned long long)shadow[i]);
                    shadow[i] = *(uint64_t *)(mem + i * PAGE);
                }
            printf("hb %s %.0f %llu %llu\n", name, next_beat - t0, (unsigned long long)writes,
                   (unsigned long long)bad);
            fflush(stdout);
            next_beat += 1.0;
        }
        nanosleep(&tick, NULL);
    }
}
