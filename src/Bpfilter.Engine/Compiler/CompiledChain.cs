using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Compiler;

/// <summary>A chain lowered for its hook: the program, its counter map, and which slot counts what.</summary>
public sealed record CompiledChain(Chain Chain, EbpfProgram Program, MapSpec Counters, CounterLayout Layout);
