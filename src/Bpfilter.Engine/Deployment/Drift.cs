using Bpfilter.Engine.Kernel;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Deployment;

/// <summary>How a deployed chain or rule differs from the ruleset it is compared with.</summary>
public enum DifferenceKind
{
    Same,
    /// <summary>The rule at this position has another name, match or action.</summary>
    Changed,
    /// <summary>The ruleset has a rule at this position that is not deployed.</summary>
    Added,
    /// <summary>A deployed rule at this position is not in the ruleset.</summary>
    Removed,
    ChainAdded,
    ChainRemoved,
    /// <summary>Hook, interface, cgroup, namespace, XDP mode or priority differ.</summary>
    AttachPointChanged,
    PolicyChanged,
}

/// <summary>One line of a drift report: what is deployed against what the ruleset says.</summary>
public sealed record RulesetDifference(string Deployment, string Chain, int? Position, string? Rule, DifferenceKind Kind, string? Deployed, string? Desired);

/// <summary>Compares a ruleset with what is deployed under its name, chain by chain and rule by rule (by position).</summary>
public static class Drift
{
    public static IReadOnlyList<RulesetDifference> Compare(Ruleset desired, string? deploymentName = null)
    {
        var name = deploymentName ?? desired.Name;
        var deployed = Deployments.Get(name);
        var result = new List<RulesetDifference>();
        foreach (var chain in desired.Chains)
        {
            var live = deployed.Chains.FirstOrDefault(c => c.Chain == chain.Name);
            if (live is null)
            {
                result.Add(new(name, chain.Name, null, null, DifferenceKind.ChainAdded, null, chain.AttachPoint));
                continue;
            }
            var (liveAt, wantedAt) = (AttachPoint(live, chain), AttachPoint(chain));
            if (liveAt != wantedAt) result.Add(new(name, chain.Name, null, null, DifferenceKind.AttachPointChanged, liveAt, wantedAt));
            if (live.Policy != chain.Policy) result.Add(new(name, chain.Name, null, "(policy)", DifferenceKind.PolicyChanged, Word(live.Policy), Word(chain.Policy)));
            for (int i = 0; i < Math.Max(live.Rules.Count, chain.Rules.Count); i++)
            {
                var was = i < live.Rules.Count ? live.Rules[i] : null;
                var wanted = i < chain.Rules.Count ? chain.Rules[i] : null;
                string? wasText = was is null ? null : Describe(was.Name, was.Match, was.Action);
                string? wantedText = wanted is null ? null : Describe(wanted.Name, wanted.Match.ToString(), wanted.Verdict);
                var kind = was is null ? DifferenceKind.Added : wanted is null ? DifferenceKind.Removed
                    : wasText == wantedText ? DifferenceKind.Same : DifferenceKind.Changed;
                result.Add(new(name, chain.Name, i + 1, wanted?.Name ?? was?.Name, kind, wasText, wantedText));
            }
        }
        foreach (var live in deployed.Chains.Where(c => desired.Chains.All(d => d.Name != c.Chain)))
            result.Add(new(name, live.Chain, null, null, DifferenceKind.ChainRemoved, AttachPoint(live), null));
        return result;
    }

    private static string Describe(string? rule, string match, Verdict action) => $"{rule ?? "(unnamed)"}: {match} -> {Word(action)}";

    private static string Word(Verdict verdict) => verdict.ToString().ToLowerInvariant();

    private static string AttachPoint(DeployedChain chain) =>
        Text(chain.Hook, chain.Interface ?? chain.Cgroup, chain.NetworkNamespace, chain.Mode, chain.Priority);

    /// <summary>
    /// The deployed attach point in the terms of the ruleset: the namespace counts only where the ruleset names one
    /// (a publish may give it instead), and a netfilter chain at the spare priority (one below its own, where a
    /// republish puts it) is at its own priority.
    /// </summary>
    private static string AttachPoint(DeployedChain live, Chain wanted) =>
        Text(live.Hook, live.Interface ?? live.Cgroup, wanted.NetworkNamespace is null ? null : live.NetworkNamespace, live.Mode,
            live.Priority is int p && p == wanted.Priority - 1 ? wanted.Priority : live.Priority);

    /// <summary>A chain's attach point as deployment would resolve it.</summary>
    private static string AttachPoint(Chain chain) =>
        Text(chain.Hook, chain.Interface ?? (chain.Cgroup is { } cgroup ? Cgroups.Resolve(cgroup) : null), chain.NetworkNamespace, chain.Mode, chain.Priority);

    private static string Text(Hook hook, string? target, string? networkNamespace, XdpMode mode, int? priority) =>
        hook.ToName() + (target is null ? "" : $" on {target}") + (hook == Hook.Xdp ? $" ({mode.ToString().ToLowerInvariant()})" : "")
        + (priority is int p ? $" at priority {p}" : "") + (networkNamespace is null ? "" : $" in {networkNamespace}");
}
