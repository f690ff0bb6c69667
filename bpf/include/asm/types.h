/* Architecture shim: the BPF target uses the generic integer types, so the
 * build needs no host-specific include directory (such as
 * /usr/include/x86_64-linux-gnu). */
#include <asm-generic/types.h>
