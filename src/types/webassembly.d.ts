// The part of the WebAssembly JS API this project uses. Node has it at run
// time, but neither lib.es2022 nor @types/node declare it (only lib.dom does,
// which would bring browser globals into a Node program).

declare namespace WebAssembly {
  interface MemoryDescriptor { initial: number; maximum?: number; shared?: boolean }
  class Memory {
    constructor(descriptor: MemoryDescriptor);
    readonly buffer: ArrayBuffer;
    grow(delta: number): number;
  }
  class Module {
    constructor(bytes: BufferSource);
    static exports(module: Module): { name: string; kind: string }[];
    static imports(module: Module): { module: string; name: string; kind: string }[];
  }
  class Instance {
    constructor(module: Module, imports?: Imports);
    readonly exports: Record<string, unknown>;
  }
  class Global {
    readonly value: unknown;
  }
  type ImportValue = Function | Memory | Global | number | bigint;
  type Imports = Record<string, Record<string, ImportValue>>;
  type BufferSource = ArrayBufferView | ArrayBuffer;
  function compile(bytes: BufferSource): Promise<Module>;
  function instantiate(module: Module, imports?: Imports): Promise<Instance>;
  function validate(bytes: BufferSource): boolean;
}
