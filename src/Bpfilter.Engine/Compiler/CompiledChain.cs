using Bpfilter.Engine.Compiler.Optimizer;
using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Compiler;

/// <summary>A chain lowered for its hook: the program, its counter map, and which slot counts what.</summary>
/// <param name="Ruleset">The ruleset the chain came from: its user chains and sets.</param>
/// <param name="Tables">The maps the optimizer filled, to be created with their entries before the program loads.</param>
public sealed record CompiledChain(Chain Chain, EbpfProgram Program, MapSpec Counters, CounterLayout Layout, Ruleset? Ruleset = null,
    IReadOnlyList<LookupTable>? Tables = null)
{
    /// <summary>The optimizer's maps (none when nothing was classified).</summary>
    public IReadOnlyList<LookupTable> LookupTables => Tables ?? [];

    /// <summary>The ruleset's limit state, when the program uses it.</summary>
    public MapSpec? Limits => Ruleset is not null && LimitMaps.SpecOf(Ruleset) is { } spec && Program.Maps.Contains(spec) ? spec : null;

    /// <summary>The ruleset's log ring buffer, when the program writes to it.</summary>
    public MapSpec? Log => Ruleset is not null && LogMaps.SpecOf(Ruleset) is { } spec && Program.Maps.Contains(spec) ? spec : null;

    /// <summary>The named sets the program looks up, each with its map.</summary>
    public IReadOnlyList<(NamedSet Set, MapSpec Map)> Sets =>
        Ruleset is null ? [] : Ruleset.Sets.Select(s => (s, SetMaps.SpecOf(s))).Where(s => Program.Maps.Contains(s.Item2)).ToList();
}
