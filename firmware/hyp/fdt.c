/*
 * fdt.c - read the VMs to run from the host device tree (devicetree spec 0.4, chapter 5:
 * the flattened format).
 *
 *   /hypervisor {
 *       compatible = "rvh,hypervisor";
 *       vm@0 {
 *           compatible = "rvh,vm";
 *           reg = <host-physical base, size>;      (#address-cells = #size-cells = 2)
 *           rvh,guest-base = <guest-physical base of that RAM>;   (64-bit)
 *           rvh,entry = <guest-physical entry>;   rvh,dtb = <guest-physical device tree>;
 *           rvh,vcpus = <n>;   rvh,virt = "hw" | "trap" | "pv";   rvh,name = "...";
 *       };
 *   };
 *
 * Whoever built the tree (rvh, or a user with dtc for QEMU) placed each VM's image and device
 * tree in that RAM; the hypervisor only checks that the regions are sane and disjoint.
 */
#include "hyp.h"
#include "rvh/libc.h"
#include "vio.h"

#define FDT_MAGIC       0xd00dfeed
#define FDT_BEGIN_NODE  1
#define FDT_END_NODE    2
#define FDT_PROP        3
#define FDT_NOP         4
#define FDT_END         9

struct vm hyp_vms[HYP_MAX_VMS];
unsigned hyp_nvms;

static uint32_t be32(const void *p)
{
    const uint8_t *b = p;
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static uint64_t be64(const void *p)
{
    return (uint64_t)be32(p) << 32 | be32((const uint8_t *)p + 4);
}

static int starts_with(const char *s, const char *prefix)
{
    while (*prefix)
        if (*s++ != *prefix++)
            return 0;
    return 1;
}

static void copy_name(char *dst, const char *src, size_t len, size_t cap)
{
    size_t n = len < cap - 1 ? len : cap - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

/* Fill hyp_vms from /hypervisor/vm@N; returns the number of VMs or -1 (message printed). */
int hyp_parse_vms(const void *fdt)
{
    const uint8_t *base = fdt;
    if (be32(base) != FDT_MAGIC) {
        printf("hyp: no device tree at %p\n", fdt);
        return -1;
    }
    uint32_t totalsize = be32(base + 4);
    const uint8_t *structs = base + be32(base + 8);
    const char *strings = (const char *)base + be32(base + 12);
    const uint8_t *end = base + totalsize;
    int depth = 0, in_hyp = 0;      /* in_hyp: depth of /hypervisor, 0 when outside */
    struct vm *vm = 0;
    const uint8_t *p = structs;
    while (p + 4 <= end) {
        uint32_t token = be32(p);
        p += 4;
        if (token == FDT_BEGIN_NODE) {
            const char *name = (const char *)p;
            size_t len = strlen(name);
            p += (len + 4) & ~3UL;
            depth++;
            if (depth == 2 && strcmp(name, "hypervisor") == 0)
                in_hyp = depth;
            else if (in_hyp && depth == in_hyp + 1 && starts_with(name, "vm")) {
                if (hyp_nvms == HYP_MAX_VMS) {
                    printf("hyp: more than %d VMs\n", HYP_MAX_VMS);
                    return -1;
                }
                vm = &hyp_vms[hyp_nvms];
                memset(vm, 0, sizeof(*vm));
                vm->id = hyp_nvms++;
                vm->nvcpus = 1;
                vm->ram_base = 0x80000000UL;
                copy_name(vm->name, "vm", 2, sizeof(vm->name));
                vm->name[2] = (char)('0' + vm->id);
                vm->name[3] = 0;
            }
        } else if (token == FDT_END_NODE) {
            if (in_hyp && depth == in_hyp + 1)
                vm = 0;
            if (depth == in_hyp)
                in_hyp = 0;
            depth--;
        } else if (token == FDT_PROP) {
            uint32_t len = be32(p), nameoff = be32(p + 4);
            const uint8_t *value = p + 8;
            p += 8 + ((len + 3) & ~3U);
            const char *prop = strings + nameoff;
            if (in_hyp && depth == in_hyp && strcmp(prop, "rvh,stats") == 0 && len == 16)
                stats_use_page(be64(value), be64(value + 8));
            if (!vm)
                continue;
            if (strcmp(prop, "reg") == 0 && len == 16) {
                vm->host_base = be64(value);
                vm->ram_size = be64(value + 8);
            } else if (strcmp(prop, "rvh,guest-base") == 0 && len == 8) {
                vm->ram_base = be64(value);
            } else if (strcmp(prop, "rvh,entry") == 0 && len == 8) {
                vm->entry = be64(value);
            } else if (strcmp(prop, "rvh,dtb") == 0 && len == 8) {
                vm->dtb = be64(value);
            } else if (strcmp(prop, "rvh,vcpus") == 0 && len == 4) {
                vm->nvcpus = be32(value);
            } else if (strcmp(prop, "rvh,name") == 0 && len > 1) {
                copy_name(vm->name, (const char *)value, len - 1, sizeof(vm->name));
            } else if (strcmp(prop, "rvh,io") == 0 && len > 1) {
                vio_parse_io(vm, (const char *)value);
            } else if (strcmp(prop, "rvh,pv-devices") == 0) {
                if (pvio_parse_devices(vm, value, len) < 0)
                    return -1;
            } else if (strcmp(prop, "rvh,virtio-slots") == 0) {
                if (vio_parse_slots(vm, value, len) < 0)
                    return -1;
            } else if (strcmp(prop, "rvh,spec") == 0) {
                vm->spec = strcmp((const char *)value, "1.9.1") == 0 ? SPEC_1_9_1 : 0;
            } else if (strcmp(prop, "rvh,virt") == 0) {
                const char *mode = (const char *)value;
                vm->mode = strcmp(mode, "trap") == 0 ? VIRT_TRAP
                         : strcmp(mode, "pv") == 0   ? VIRT_PV
                                                     : VIRT_HW;
            }
        } else if (token == FDT_NOP) {
            continue;
        } else {
            break;      /* FDT_END or garbage */
        }
    }
    return (int)hyp_nvms;
}
