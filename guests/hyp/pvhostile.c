/*
 * pvhostile.c - a VM (io=pv, the default 64 MiB of RAM, one pv disk) that lies to the pv
 * backend (firmware/hyp/pvio.c), beside a victim VM checking its memory:
 *
 *   rvh run --hyp --guest victim.elf --guest pvhostile.elf,drive=scratch.img,io=pv
 *
 *   - calls with wild arguments: device numbers, records and rings outside its RAM or
 *     misaligned, a queue the disk does not have, an unknown function: the SBI errors;
 *   - buffers outside its RAM (just past its end, where the next VM's memory is in the host;
 *     across the end; far away), huge lengths: BAD_ADDRESS or BAD_LENGTH, nothing read or
 *     written;
 *   - req_prod jumping more than a ring ahead, or back: the ring's ERROR word, the ring
 *     ignored until attached again, then working;
 *   - a ring taken back (detached) with 32 reads in flight, then attached again;
 *   - FUZZ_ROUNDS batches of random requests whose every status it predicts from the
 *     extension's rules (writes only where they must fail: the disk must not change);
 *   - with a NIC as device 1 (netdev=): frames from outside its RAM, receive buffers outside
 *     it, bad lengths, ops on the wrong queue: refused, and no frame reaches the hub.
 */
#include "pvio.h"

TEST_NAME("hyp/pvhostile");

#define SECTOR          512
#define VM_RAM_BASE     0x80000000UL
#define VM_RAM_SIZE     (64UL << 20)
#define VM_RAM_END      (VM_RAM_BASE + VM_RAM_SIZE)
#define FUZZ_ROUNDS     200

static struct pvio_ring ring;
static struct pvio_dev disk;
static uint8_t buf[32 * 65536] __attribute__((aligned(4096)));
static uint64_t seed = 0x2545F4914F6CDD1DULL;

static uint64_t next(void)
{
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return seed;
}

static long call(long fid, unsigned long a0, unsigned long a1, unsigned long a2)
{
    return sbi_ecall(SBI_EXT_RVH_PVIO, fid, a0, a1, a2, 0, 0, 0).error;
}

/* what the extension promises for a block request (docs/virtio.md) */
static uint8_t predict(uint8_t op, uint64_t sector, uint64_t addr, uint32_t len)
{
    if (op == RVH_PVIO_OP_FLUSH)
        return RVH_PVIO_S_OK;
    if (op != RVH_PVIO_OP_READ && op != RVH_PVIO_OP_WRITE)
        return RVH_PVIO_S_UNSUPPORTED;
    if (!len || len % SECTOR || len > disk.max_length || sector > disk.capacity ||
        sector + len / SECTOR > disk.capacity)
        return RVH_PVIO_S_BAD_LENGTH;
    if (addr < VM_RAM_BASE || addr > VM_RAM_END - len)
        return RVH_PVIO_S_BAD_ADDRESS;
    return RVH_PVIO_S_OK;
}

/* post n requests, one NOTIFY, and check each status */
static void batch(const uint8_t *op, const uint64_t *sector, const uint64_t *addr,
                  const uint32_t *len, unsigned n, long check)
{
    for (unsigned i = 0; i < n; i++)
        CHECK(check, pvio_post(&disk, 0, op[i], sector[i], (void *)addr[i], len[i], i) != 0);
    pvio_kick(&disk, 0);
    for (unsigned i = 0; i < n; i++) {
        volatile struct pvio_slot *s;
        while (!(s = pvio_response(&disk, 0)))
            pvio_wait(&disk, 0, check);
        if (s->status != predict(op[i], sector[i], addr[i], len[i])) {
            printf("pvhostile: op %u sector 0x%lx addr 0x%lx len 0x%x: status %u, expected %u\n",
                   op[i], (unsigned long)sector[i], (unsigned long)addr[i], len[i], s->status,
                   predict(op[i], sector[i], addr[i], len[i]));
            rvh_check_failed(check, __LINE__, "status");
        }
    }
}

static unsigned broken_rings;

/* publish a wild req_prod: the ring must be refused (ERROR), then work once attached again */
static void wild_index(uint32_t req_prod)
{
    ring.req_prod = req_prod;
    __sync_synchronize();
    CHECK_EQ(30, call(SBI_RVH_PVIO_NOTIFY, 0, 0, 0), SBI_SUCCESS);
    CHECK_EQ(31, ring.error, RVH_PVIO_ERROR_INDEX);
    CHECK_EQ(32, ring.rsp_prod, disk.q[0].rsp_cons);
    ring.req_prod = disk.q[0].req_prod + 1;     /* honest again: still ignored */
    CHECK_EQ(33, call(SBI_RVH_PVIO_NOTIFY, 0, 0, 0), SBI_SUCCESS);
    CHECK_EQ(34, ring.rsp_prod, disk.q[0].rsp_cons);
    broken_rings++;
    CHECK_EQ(35, pvio_attach(&disk, 0, &ring), 0);
    uint32_t len = SECTOR;
    CHECK_EQ(36, pvio_sync(&disk, 0, RVH_PVIO_OP_READ, 1, buf, &len, 37), RVH_PVIO_S_OK);
}

/* with a NIC (device 1): frames from outside its RAM (the next VM's memory) must not leave,
   receive buffers outside it are refused */
static struct pvio_ring nic_tx, nic_rx;
static struct pvio_dev nic;

static void hostile_nic(void)
{
    CHECK_EQ(60, pvio_open(&nic, 1), 0);
    CHECK_EQ(61, nic.type, RVH_PVIO_TYPE_NET);
    CHECK_EQ(62, pvio_attach(&nic, 0, &nic_tx), 0);
    CHECK_EQ(63, pvio_attach(&nic, 1, &nic_rx), 0);
    static const struct { int queue; uint8_t op; uint64_t addr; uint32_t len; uint8_t status; }
        bad[] = {
        { 0, RVH_PVIO_OP_TRANSMIT, VM_RAM_END, 64, RVH_PVIO_S_BAD_ADDRESS },
        { 0, RVH_PVIO_OP_TRANSMIT, VM_RAM_END - 32, 64, RVH_PVIO_S_BAD_ADDRESS },
        { 0, RVH_PVIO_OP_TRANSMIT, VM_RAM_BASE - 64, 64, RVH_PVIO_S_BAD_ADDRESS },
        { 0, RVH_PVIO_OP_TRANSMIT, 0, 10, RVH_PVIO_S_BAD_LENGTH },
        { 0, RVH_PVIO_OP_TRANSMIT, 0, 1515, RVH_PVIO_S_BAD_LENGTH },
        { 0, RVH_PVIO_OP_RECEIVE, 0, 2048, RVH_PVIO_S_UNSUPPORTED },
        { 1, RVH_PVIO_OP_RECEIVE, VM_RAM_END, 2048, RVH_PVIO_S_BAD_ADDRESS },
        { 1, RVH_PVIO_OP_RECEIVE, VM_RAM_END - 1024, 2048, RVH_PVIO_S_BAD_ADDRESS },
        { 1, RVH_PVIO_OP_RECEIVE, 0, 0, RVH_PVIO_S_BAD_LENGTH },
        { 1, RVH_PVIO_OP_TRANSMIT, 0, 64, RVH_PVIO_S_UNSUPPORTED },
    };
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint32_t len = bad[i].len;
        void *addr = bad[i].addr ? (void *)bad[i].addr : buf;
        CHECK_EQ(64, pvio_sync(&nic, bad[i].queue, bad[i].op, 0, addr, &len, 65), bad[i].status);
    }
    printf("pvhostile: %u NIC requests refused, nothing sent\n",
           (unsigned)(sizeof bad / sizeof bad[0]));
}

int main(void)
{
    int count = pvio_count();
    CHECK(1, count == 1 || count == 2);
    CHECK_EQ(2, pvio_open(&disk, 0), 0);
    CHECK_EQ(3, disk.type, RVH_PVIO_TYPE_BLK);
    if (count == 2)
        hostile_nic();

    /* the calls */
    unsigned refused = 0;
    static const struct { long fid; unsigned long a0, a1, a2; long error; } calls[] = {
        { SBI_RVH_PVIO_DEVICE_INFO, 2, (unsigned long)buf, 0, SBI_ERR_INVALID_PARAM },
        { SBI_RVH_PVIO_DEVICE_INFO, ~0UL, (unsigned long)buf, 0, SBI_ERR_INVALID_PARAM },
        { SBI_RVH_PVIO_DEVICE_INFO, 0, VM_RAM_END, 0, SBI_ERR_INVALID_ADDRESS },
        { SBI_RVH_PVIO_DEVICE_INFO, 0, VM_RAM_END - 16, 0, SBI_ERR_INVALID_ADDRESS },
        { SBI_RVH_PVIO_DEVICE_INFO, 0, 0x1000, 0, SBI_ERR_INVALID_ADDRESS },
        { SBI_RVH_PVIO_DEVICE_INFO, 0, ~0UL - 8, 0, SBI_ERR_INVALID_ADDRESS },
        { SBI_RVH_PVIO_SET_RING, 0, 0, VM_RAM_END, SBI_ERR_INVALID_ADDRESS },
        { SBI_RVH_PVIO_SET_RING, 0, 0, VM_RAM_END - 2048, SBI_ERR_INVALID_ADDRESS },
        { SBI_RVH_PVIO_SET_RING, 0, 0, VM_RAM_BASE + 8, SBI_ERR_INVALID_ADDRESS },
        { SBI_RVH_PVIO_SET_RING, 0, 0, 0x10000000, SBI_ERR_INVALID_ADDRESS },
        { SBI_RVH_PVIO_SET_RING, 0, 1, (unsigned long)&ring, SBI_ERR_INVALID_PARAM },
        { SBI_RVH_PVIO_SET_RING, 3, 0, (unsigned long)&ring, SBI_ERR_INVALID_PARAM },
        { SBI_RVH_PVIO_NOTIFY, 0, 7, 0, SBI_ERR_INVALID_PARAM },
        { 99, 0, 0, 0, SBI_ERR_NOT_SUPPORTED },
    };
    for (unsigned i = 0; i < sizeof calls / sizeof calls[0]; i++, refused++)
        CHECK_EQ(4, call(calls[i].fid, calls[i].a0, calls[i].a1, calls[i].a2), calls[i].error);
    CHECK_EQ(5, pvio_attach(&disk, 0, &ring), 0);

    /* wild buffers: none may be read or written */
    {
        static const uint8_t op[] = { RVH_PVIO_OP_READ, RVH_PVIO_OP_READ, RVH_PVIO_OP_READ,
                                      RVH_PVIO_OP_WRITE, RVH_PVIO_OP_READ, RVH_PVIO_OP_READ,
                                      RVH_PVIO_OP_WRITE, RVH_PVIO_OP_READ };
        static const uint64_t sector[] = { 0, 0, 0, 0, 0, 0, 0, 2 };
        uint64_t addr[] = { VM_RAM_END, VM_RAM_END - SECTOR / 2, 1UL << 63, VM_RAM_END + 4096,
                            0, 0x0c000000 /* the PLIC */, (uint64_t)buf, (uint64_t)buf };
        static const uint32_t len[] = { SECTOR, SECTOR, SECTOR, SECTOR, SECTOR, SECTOR,
                                        0xfffffe00, 4096 };
        batch(op, sector, addr, len, 8, 10);
    }

    /* indices out of range */
    wild_index(disk.q[0].rsp_cons + PVIO_SLOTS + 1);
    wild_index(disk.q[0].rsp_cons - 1);
    wild_index(0x80000000u);

    /* a ring taken back with reads in flight, then given again */
    for (unsigned i = 0; i < 32; i++)
        CHECK(40, pvio_post(&disk, 0, RVH_PVIO_OP_READ, 0, buf + i * 65536, 65536, i) != 0);
    pvio_kick(&disk, 0);
    CHECK_EQ(41, call(SBI_RVH_PVIO_SET_RING, 0, 0, 0), SBI_SUCCESS);
    CHECK_EQ(42, pvio_attach(&disk, 0, &ring), 0);
    uint32_t one = SECTOR;
    CHECK_EQ(43, pvio_sync(&disk, 0, RVH_PVIO_OP_READ, 3, buf, &one, 44), RVH_PVIO_S_OK);

    /* random batches, every status predicted */
    unsigned answered = 0;
    for (unsigned round = 0; round < FUZZ_ROUNDS; round++) {
        uint8_t op[16];
        uint64_t sector[16], addr[16];
        uint32_t len[16];
        unsigned n = 1 + next() % 16;
        for (unsigned i = 0; i < n; i++) {
            static const uint8_t ops[] = { RVH_PVIO_OP_READ, RVH_PVIO_OP_READ, RVH_PVIO_OP_WRITE,
                                           RVH_PVIO_OP_FLUSH, 0, RVH_PVIO_OP_TRANSMIT, 0xff };
            op[i] = ops[next() % sizeof ops];
            uint64_t r = next();
            switch (r % 4) {
            case 0: len[i] = SECTOR * (1 + next() % 128); break;
            case 1: len[i] = (uint32_t)next(); break;
            case 2: len[i] = SECTOR * (1 + next() % 8); break;
            default: len[i] = next() % 2 ? 0 : disk.max_length + SECTOR;
            }
            r = next();
            switch (r % 5) {
            case 0: addr[i] = VM_RAM_END - (next() % 8192); break;
            case 1: addr[i] = next(); break;
            case 2: addr[i] = VM_RAM_BASE - (next() % 8192); break;
            default: addr[i] = (uint64_t)buf + (next() % (sizeof buf - 65536));
            }
            sector[i] = next() % 3 ? next() % (disk.capacity + 8) : next();
            /* the disk must not change: a write that would succeed reads instead */
            if (op[i] == RVH_PVIO_OP_WRITE && predict(op[i], sector[i], addr[i], len[i]) == 0)
                op[i] = RVH_PVIO_OP_READ;
        }
        batch(op, sector, addr, len, n, 50);
        answered += n;
    }
    printf("pvhostile: %u calls refused, %u rings refused, %u random requests answered as "
           "predicted\n", refused, broken_rings, answered);
    pass();
    return 0;
}
