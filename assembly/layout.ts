// Where everything lives in linear memory, decided once by setup(): the two
// rule tables, the batch descriptors (slot index, length, result and the
// balancer's detail word per entry), the packet slots, and after them the
// balancer's own memory (its connection table and table sets) if it has any. The shell asks for these offsets through the
// exports; it never computes them.


const PAGE: usize = 65536;
const ALIGN: usize = 64;

export let tableBytes: usize = 0;
export let tables: usize = 0;
export let slotIndexes: usize = 0;
export let lengths: usize = 0;
export let results: usize = 0;
export let details: usize = 0;
export let slots: usize = 0;
export let slotSize: u32 = 0;
export let slotCount: u32 = 0;
/** Bytes of virtio-net header before each packet in a slot (0: none). */
export let vnetHeaderBytes: u32 = 0;
/** The balancer's region after the slots, and its size (0: none). */
export let extra: usize = 0;
export let extraBytes: u64 = 0;

// @ts-ignore: decorator
@inline function align(x: usize): usize {
  return (x + ALIGN - 1) & ~(ALIGN - 1);
}

/**
 * Lays out two rule tables of `ruleTableBytes` each, `count` slots of
 * `size` bytes after the static data and `more` bytes after them, and grows
 * the memory to hold them. Returns false when the memory cannot grow.
 * Called once, before the shell takes any view of the memory (growing would
 * detach it).
 */
export function setup(ruleTableBytes: usize, size: u32, count: u32, more: u64): bool {
  tableBytes = align(ruleTableBytes);
  tables = align(__heap_base);
  slotIndexes = tables + 2 * tableBytes;
  lengths = align(slotIndexes + <usize>count * 4);
  results = align(lengths + <usize>count * 4);
  details = align(results + <usize>count * 4);
  slots = align(details + <usize>count * 4);
  slotSize = size;
  slotCount = count;
  // In 64 bits: count * size can pass 4 GiB, which 32-bit memory cannot hold.
  const slotsEnd = (<u64>slots + <u64>count * <u64>size + ALIGN - 1) & ~(<u64>ALIGN - 1);
  const end = slotsEnd + more;
  extra = more != 0 ? <usize>slotsEnd : 0;
  extraBytes = more;
  if (end > <u64>0xffff0000) return false;
  const need = <i32>((end + PAGE - 1) / PAGE) - memory.size();
  return need <= 0 || memory.grow(need) >= 0;
}

