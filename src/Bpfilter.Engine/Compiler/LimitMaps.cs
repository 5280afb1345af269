using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Compiler;

/// <summary>
/// The state of a ruleset's limit matches: one array of u64, one slot per rule with a limit (the hooked chains' rules
/// in order, then the user chains'), shared by every program of the deployment, as iptables keeps one bucket per rule.
/// Each slot holds the rule's theoretical arrival time in nanoseconds (GCRA, the token bucket's equivalent). When the
/// ruleset logs, one more slot after them limits how fast all its log verdicts together write entries.
/// </summary>
public static class LimitMaps
{
    /// <summary>How fast a deployment's log verdicts may write entries, together: a flood cannot drown the host.</summary>
    public static readonly LimitMatch LogRate = new(100, RateUnit.Second, burst: 200);

    /// <summary>The map, or null when no rule of the ruleset has a limit or logs.</summary>
    public static MapSpec? SpecOf(Ruleset ruleset)
    {
        int count = Rules(ruleset).Count() + (Logs(ruleset) ? 1 : 0);
        return count == 0 ? null : new MapSpec(ChainCompiler.KernelName("l_", ruleset.Name), MapType.Array, 4, 8, (uint)count);
    }

    /// <summary>The slot of the log rate.</summary>
    public static int LogRateSlot(Ruleset ruleset) => Rules(ruleset).Count();

    private static bool Logs(Ruleset ruleset) => LogMaps.Entries(ruleset).Count > 0;

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
