/*
 * rvh/virtio_spec.h - the numbers and layouts of the VIRTIO 1.2 specification that rvh's C
 * code shares: the hypervisor's virtual devices and its driver of the machine's devices
 * (firmware/hyp/vio.h) and the guests' driver library (guests/common/virtio.h).  What the
 * Python device models also know (status bits, device IDs, InterruptStatus, the reserved
 * feature bits, ring flags) comes from rvh/encoding.h, i.e. rvh/devices/virtio/mmio.py and
 * queue.py; the rest is written here once.
 */
#ifndef RVH_VIRTIO_SPEC_H
#define RVH_VIRTIO_SPEC_H

#include <stdint.h>
#include "rvh/encoding.h"

/* InterruptStatus bits (4.2.2) */
#define VIRTIO_INT_VRING                ((unsigned)VIRTIO_MMIO_INTERRUPT_USED_BUFFER)
#define VIRTIO_INT_CONFIG               ((unsigned)VIRTIO_MMIO_INTERRUPT_CONFIG_CHANGE)

/* device status (2.1) */
#define VIRTIO_STATUS_ACKNOWLEDGE       ((unsigned)VIRTIO_MMIO_STATUS_ACKNOWLEDGE)
#define VIRTIO_STATUS_DRIVER            ((unsigned)VIRTIO_MMIO_STATUS_DRIVER)
#define VIRTIO_STATUS_DRIVER_OK         ((unsigned)VIRTIO_MMIO_STATUS_DRIVER_OK)
#define VIRTIO_STATUS_FEATURES_OK       ((unsigned)VIRTIO_MMIO_STATUS_FEATURES_OK)
#define VIRTIO_STATUS_NEEDS_RESET       ((unsigned)VIRTIO_MMIO_STATUS_DEVICE_NEEDS_RESET)
#define VIRTIO_STATUS_FAILED            ((unsigned)VIRTIO_MMIO_STATUS_FAILED)

/* device IDs (5) */
#define VIRTIO_ID_NET                   VIRTIO_MMIO_DEVICE_ID_NET
#define VIRTIO_ID_BLOCK                 VIRTIO_MMIO_DEVICE_ID_BLOCK

/* reserved (device-independent) feature bits (6) */
#define VIRTIO_F_INDIRECT_DESC          28
#define VIRTIO_F_EVENT_IDX              29
#define VIRTIO_F_VERSION_1              32
#define VIRTIO_F_ACCESS_PLATFORM        33
#define VIRTIO_F_RING_PACKED            34
#define VIRTIO_F_IN_ORDER               35
#define VIRTIO_F_ORDER_PLATFORM         36
#define VIRTIO_F_SR_IOV                 37
#define VIRTIO_F_NOTIFICATION_DATA      38
#define VIRTIO_F_NOTIF_CONFIG_DATA      39
#define VIRTIO_F_RING_RESET             40
#define VIRTIO_BIT(b)                   (1ULL << (b))
/* the bit numbers the Python devices hold as masks (rvh/devices/virtio/mmio.py) */
_Static_assert(VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) == VIRTIO_MMIO_VIRTIO_F_INDIRECT_DESC, "");
_Static_assert(VIRTIO_BIT(VIRTIO_F_EVENT_IDX) == VIRTIO_MMIO_VIRTIO_F_EVENT_IDX, "");
_Static_assert(VIRTIO_BIT(VIRTIO_F_VERSION_1) == VIRTIO_MMIO_VIRTIO_F_VERSION_1, "");
_Static_assert(VIRTIO_BIT(VIRTIO_F_ACCESS_PLATFORM) == VIRTIO_MMIO_VIRTIO_F_ACCESS_PLATFORM, "");
_Static_assert(VIRTIO_BIT(VIRTIO_F_RING_PACKED) == VIRTIO_MMIO_VIRTIO_F_RING_PACKED, "");
_Static_assert(VIRTIO_BIT(VIRTIO_F_IN_ORDER) == VIRTIO_MMIO_VIRTIO_F_IN_ORDER, "");

/* ---- split virtqueue layout (2.7); the VIRTQ_*_F_* flags are rvh/encoding.h's ---- */
struct virtq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct virtq_avail {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[];            /* then uint16_t used_event (EVENT_IDX) */
};

struct virtq_used_elem {
    uint32_t id;
    uint32_t len;
};
struct virtq_used {
    uint16_t flags;
    uint16_t idx;
    struct virtq_used_elem ring[];  /* then uint16_t avail_event (EVENT_IDX) */
};

/* 2.7.10: must the other side be notified when idx moves old -> new_idx? */
static inline int vring_need_event(uint16_t event_idx, uint16_t new_idx,
                                   uint16_t old)
{
    return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old);
}

/* ======================================================================
 * virtio-blk (5.2)
 * ====================================================================== */
#define VIRTIO_BLK_F_SIZE_MAX       1
#define VIRTIO_BLK_F_SEG_MAX        2
#define VIRTIO_BLK_F_GEOMETRY       4
#define VIRTIO_BLK_F_RO             5
#define VIRTIO_BLK_F_BLK_SIZE       6
#define VIRTIO_BLK_F_FLUSH          9
#define VIRTIO_BLK_F_TOPOLOGY       10
#define VIRTIO_BLK_F_CONFIG_WCE     11
#define VIRTIO_BLK_F_MQ             12
#define VIRTIO_BLK_F_DISCARD        13
#define VIRTIO_BLK_F_WRITE_ZEROES   14
#define VIRTIO_BLK_F_LIFETIME       15
#define VIRTIO_BLK_F_SECURE_ERASE   16

/* config space offsets */
#define VIRTIO_BLK_CFG_CAPACITY             0   /* le64, 512-byte sectors */
#define VIRTIO_BLK_CFG_SIZE_MAX             8
#define VIRTIO_BLK_CFG_SEG_MAX              12
#define VIRTIO_BLK_CFG_CYLINDERS            16
#define VIRTIO_BLK_CFG_HEADS                18
#define VIRTIO_BLK_CFG_SECTORS              19
#define VIRTIO_BLK_CFG_BLK_SIZE             20
#define VIRTIO_BLK_CFG_PHYS_BLOCK_EXP       24
#define VIRTIO_BLK_CFG_ALIGNMENT_OFFSET     25
#define VIRTIO_BLK_CFG_MIN_IO_SIZE          26
#define VIRTIO_BLK_CFG_OPT_IO_SIZE          28
#define VIRTIO_BLK_CFG_WRITEBACK            32
#define VIRTIO_BLK_CFG_NUM_QUEUES           34
#define VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS  36
#define VIRTIO_BLK_CFG_MAX_DISCARD_SEG      40
#define VIRTIO_BLK_CFG_DISCARD_ALIGN        44
#define VIRTIO_BLK_CFG_MAX_WZ_SECTORS       48
#define VIRTIO_BLK_CFG_MAX_WZ_SEG           52
#define VIRTIO_BLK_CFG_WZ_MAY_UNMAP         56

#define VIRTIO_BLK_T_IN             0
#define VIRTIO_BLK_T_OUT            1
#define VIRTIO_BLK_T_FLUSH          4
#define VIRTIO_BLK_T_GET_ID         8
#define VIRTIO_BLK_T_GET_LIFETIME   10
#define VIRTIO_BLK_T_DISCARD        11
#define VIRTIO_BLK_T_WRITE_ZEROES   13
#define VIRTIO_BLK_T_SECURE_ERASE   14

#define VIRTIO_BLK_S_OK             0
#define VIRTIO_BLK_S_IOERR          1
#define VIRTIO_BLK_S_UNSUPP         2

#define VIRTIO_BLK_SECTOR           512
#define VIRTIO_BLK_ID_BYTES         20

struct virtio_blk_req_hdr {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};
struct virtio_blk_discard_write_zeroes {
    uint64_t sector;
    uint32_t num_sectors;
    uint32_t flags;             /* bit 0: unmap (WRITE_ZEROES only) */
};
#define VIRTIO_BLK_WZ_F_UNMAP       1

/* ======================================================================
 * virtio-net (5.1)
 * ====================================================================== */
#define VIRTIO_NET_F_CSUM           0
#define VIRTIO_NET_F_GUEST_CSUM     1
#define VIRTIO_NET_F_CTRL_GUEST_OFFLOADS 2
#define VIRTIO_NET_F_MTU            3
#define VIRTIO_NET_F_MAC            5
#define VIRTIO_NET_F_GUEST_TSO4     7
#define VIRTIO_NET_F_GUEST_TSO6     8
#define VIRTIO_NET_F_GUEST_ECN      9
#define VIRTIO_NET_F_GUEST_UFO      10
#define VIRTIO_NET_F_HOST_TSO4      11
#define VIRTIO_NET_F_HOST_TSO6      12
#define VIRTIO_NET_F_HOST_ECN       13
#define VIRTIO_NET_F_HOST_UFO       14
#define VIRTIO_NET_F_MRG_RXBUF      15
#define VIRTIO_NET_F_STATUS         16
#define VIRTIO_NET_F_CTRL_VQ        17
#define VIRTIO_NET_F_CTRL_RX        18
#define VIRTIO_NET_F_CTRL_VLAN      19
#define VIRTIO_NET_F_CTRL_RX_EXTRA  20
#define VIRTIO_NET_F_GUEST_ANNOUNCE 21
#define VIRTIO_NET_F_MQ             22
#define VIRTIO_NET_F_CTRL_MAC_ADDR  23
#define VIRTIO_NET_F_GUEST_USO4     54
#define VIRTIO_NET_F_GUEST_USO6     55
#define VIRTIO_NET_F_HOST_USO       56
#define VIRTIO_NET_F_HASH_REPORT    57
#define VIRTIO_NET_F_GUEST_HDRLEN   59
#define VIRTIO_NET_F_RSS            60
#define VIRTIO_NET_F_RSC_EXT        61
#define VIRTIO_NET_F_STANDBY        62
#define VIRTIO_NET_F_SPEED_DUPLEX   63

#define VIRTIO_NET_CFG_MAC          0   /* 6 bytes */
#define VIRTIO_NET_CFG_STATUS       6   /* le16 */
#define VIRTIO_NET_CFG_MAX_VQ_PAIRS 8
#define VIRTIO_NET_CFG_MTU          10
#define VIRTIO_NET_CFG_SPEED        12
#define VIRTIO_NET_CFG_DUPLEX       16
#define VIRTIO_NET_S_LINK_UP        1
#define VIRTIO_NET_S_ANNOUNCE       2

#define VIRTIO_NET_RXQ              0
#define VIRTIO_NET_TXQ              1

struct virtio_net_hdr {
    uint8_t flags;
    uint8_t gso_type;
    uint16_t hdr_len;
    uint16_t gso_size;
    uint16_t csum_start;
    uint16_t csum_offset;
    uint16_t num_buffers;
};
#define VIRTIO_NET_HDR_LEN          12
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_GSO_NONE     0

#endif /* RVH_VIRTIO_SPEC_H */
