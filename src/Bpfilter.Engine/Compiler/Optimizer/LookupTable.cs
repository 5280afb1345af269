using Bpfilter.Engine.Ebpf;

namespace Bpfilter.Engine.Compiler.Optimizer;

/// <summary>
/// A map the optimizer fills at compile time: the loader creates it, writes every entry, freezes it (no user-space
/// writer may change what the program classifies by) and hands it to the program. It lives as long as the program.
/// </summary>
public sealed record LookupTable(MapSpec Map, IReadOnlyList<KeyValuePair<byte[], byte[]>> Entries);
