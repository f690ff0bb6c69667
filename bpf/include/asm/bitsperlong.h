/* Architecture shim, see types.h. */
#include <asm-generic/bitsperlong.h>
