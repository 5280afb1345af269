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
    /// <summary>Hook, interface, cgroup, namespace, XDP mode, TCX order or netfilter priority differ.</summary>
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
        var (deployed, orders) = Read(name);
        var result = new List<RulesetDifference>();
        foreach (var chain in desired.Chains)
        {
            var live = deployed.Chains.FirstOrDefault(c => c.Chain == chain.Name);
            if (live is null)
            {
                result.Add(new(name, chain.Name, null, null, DifferenceKind.ChainAdded, null, AttachPoint(chain)));
                continue;
            }
            var (liveAt, wantedAt) = (AttachPoint(live, orders.GetValueOrDefault(live.Chain), chain), AttachPoint(chain));
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
            result.Add(new(name, live.Chain, null, null, DifferenceKind.ChainRemoved, AttachPoint(live, orders.GetValueOrDefault(live.Chain)), null));
        return result;
    }

    /// <summary>
    /// The deployment as <see cref="Deployments.Get"/> describes it (which also finishes an abandoned publish and says
    /// DeploymentNotFound), with the TCX order of each chain from the same generation's manifest.
    /// </summary>
    private static (DeploymentInfo Deployed, Dictionary<string, TcxOrder> Orders) Read(string name)
    {
        for (int attempt = 0; attempt < 3; attempt++)
        {
            var deployed = Deployments.Get(name);
            if (ManifestStore.Read(name) is { } manifest && manifest.Generation == deployed.Generation)
                return (deployed, manifest.Chains.ToDictionary(c => c.Name, c => c.Order, StringComparer.Ordinal));
            // A publish or unpublish came in between the two reads: read both again (Get says DeploymentNotFound once it is gone).
        }
        throw new BpfilterException("DeploymentLocked", FailureCategory.ResourceBusy,
            $"deployment '{name}' changed at every read: it is being published or unpublished; compare again once that is done");
    }

    private static string Describe(string? rule, string match, Verdict action) => $"{rule ?? "(unnamed)"}: {match} -> {Word(action)}";

    private static string Word(Verdict verdict) => verdict.ToString();

    private static string AttachPoint(DeployedChain chain, TcxOrder order) =>
        Text(chain.Hook, chain.Interface ?? chain.Cgroup, chain.NetworkNamespace, chain.Mode, chain.Priority, order);

    /// <summary>
    /// The deployed attach point in the terms of the ruleset: the namespace counts only where the ruleset names one
    /// (a publish may give it instead) and is the same when name and path lead to one file, and a netfilter chain at
    /// the spare priority (one below its own, where a republish puts it) is at its own priority.
    /// </summary>
    private static string AttachPoint(DeployedChain live, TcxOrder order, Chain wanted) =>
        Text(live.Hook, live.Interface ?? live.Cgroup,
            wanted.NetworkNamespace is not { } ns ? null : SameNamespace(live.NetworkNamespace, ns) ? ns : live.NetworkNamespace, live.Mode,
            live.Priority is int p && p == wanted.Priority - 1 ? wanted.Priority : live.Priority, order);

    private static bool SameNamespace(string? deployed, string wanted) =>
        deployed is not null && (deployed == wanted || NetworkNamespace.ResolvePath(deployed) == NetworkNamespace.ResolvePath(wanted));

    /// <summary>A chain's attach point as deployment would resolve it.</summary>
    private static string AttachPoint(Chain chain) =>
        Text(chain.Hook, chain.Interface ?? (chain.Cgroup is { } cgroup ? Cgroups.Resolve(cgroup) : null), chain.NetworkNamespace, chain.Mode, chain.Priority,
            chain.Order);

    private static string Text(Hook hook, string? target, string? networkNamespace, XdpMode mode, int? priority, TcxOrder order) =>
        hook.ToName() + (target is null ? "" : $" on {target}") + (hook == Hook.Xdp ? $" ({mode.ToString().ToLowerInvariant()})" : "")
        + (hook is Hook.TcIngress or Hook.TcEgress ? $" (order {order.ToString().ToLowerInvariant()})" : "")
        + (priority is int p ? $" at priority {p}" : "") + (networkNamespace is null ? "" : $" in {networkNamespace}");
}
