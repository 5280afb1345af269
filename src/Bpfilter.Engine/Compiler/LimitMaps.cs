using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Compiler;

/// <summary>
/// The state of a ruleset's limit matches: one array of u64, one slot per rule with a limit (the hooked chains' rules
/// in order, then the user chains'), shared by every program of the deployment, as iptables keeps one bucket per rule.
/// Each slot holds the rule's theoretical arrival time in nanoseconds (GCRA, the token bucket's equivalent).
/// </summary>
public static class LimitMaps
{
    /// <summary>The map, or null when no rule of the ruleset has a limit.</summary>
    public static MapSpec? SpecOf(Ruleset ruleset)
    {
        int count = Rules(ruleset).Count();
        return count == 0 ? null : new MapSpec(ChainCompiler.KernelName("l_", ruleset.Name), MapType.Array, 4, 8, (uint)count);
    }

    /// <summary>The slot of the limit of rule <paramref name="index"/> of chain <paramref name="chain"/>.</summary>
    public static int SlotOf(Ruleset ruleset, string chain, int index) =>
        Rules(ruleset).Select((r, slot) => (r, slot)).First(x => x.r.Chain == chain && x.r.Index == index).slot;

    private static IEnumerable<(string Chain, int Index)> Rules(Ruleset ruleset) =>
        ruleset.Chains.Select(c => (c.Name, (IReadOnlyList<Rule>)c.Rules))
            .Concat(ruleset.UserChains.Select(c => (c.Name, (IReadOnlyList<Rule>)c.Rules)))
            .SelectMany(c => c.Item2.Select((rule, i) => (c.Name, i, rule)))
            .Where(x => x.rule.Match.Limit is not null)
            .Select(x => (x.Name, x.i));
}
