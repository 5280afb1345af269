using Bpfilter.Engine.Formats.Iptables;
using Bpfilter.Engine.Kernel;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Deployment;

/// <summary>What a batch of iptables commands printed (-L, -S) and, when it changed the deployment, the deployment as published.</summary>
public sealed record IptablesResult(IReadOnlyList<string> Output, DeploymentInfo? Deployment);

/// <summary>
/// Runs iptables commands against a deployment: its published ruleset read as iptables' filter table
/// (<see cref="IptablesTable"/>), the commands run in order, and the result published as one change.
/// <para>
/// A batch that changes chains, rules or policies is one publish, under the deployment's lock from the read to the
/// end, so no other publisher's change is lost between: counters go on for every rule the batch kept (wherever it
/// moved), start at zero for the rules it made or replaced (or at -c's counts), and at zero for what -Z zeroed. A
/// batch that only zeroes counters writes zeros into the pinned counter maps and the manifest, with no reload. A
/// batch that only lists (-L, -S) or checks (-C) reads the deployment and changes nothing. With no deployment of the
/// name, the table is empty: INPUT, FORWARD and OUTPUT with policy ACCEPT. A failing command changes nothing.
/// </para>
/// </summary>
public static class IptablesDeployment
{
    /// <summary>The deployment iptables commands change when no name is given.</summary>
    public const string DefaultName = "iptables";

    /// <summary>
    /// Runs <paramref name="commands"/> against deployment <paramref name="name"/>. A publish attaches where the
    /// deployment's chains are (or, for a new deployment or one given <paramref name="options"/>' network namespace,
    /// there); <paramref name="placements"/> moves built-in chains (INPUT to xdp:eth1, say).
    /// </summary>
    public static IptablesResult Run(string name, IReadOnlyList<IptablesCommand> commands, PublishOptions? options = null,
        IptablesSaveOptions? placements = null, Action<string>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(commands);
        Names.CheckDeploymentName(name);
        progress ??= _ => { };
        if (!commands.Any(c => c.Changes || c.Zeroes)) return ReadOnly(name, commands);

        if (options?.NetworkNamespace is { } ns) Names.CheckNamespace(ns);
        Privileges.Require(Privileges.ForDeployment, "Changing a deployment with iptables commands", asRoot: true);
        BpfFs.EnsureMounted();
        using var lockFile = Publisher.Lock(name);
        Manifest? manifest = null;
        if (Directory.Exists(DeploymentPaths.Directory(name)))
        {
            Recovery.Complete(name, progress);
            manifest = ManifestStore.Read(name);
        }
        var table = Read(name, manifest);
        var output = RunAll(table, commands);
        if (!commands.Any(c => c.Changes))
        {
            if (manifest is not null && table.Zeroed.Count > 0) Deployments.ZeroCounters(name, manifest, Slots(manifest, table.Zeroed));
            return new IptablesResult(output, manifest is null ? null : Deployments.Describe(ManifestStore.Read(name)!));
        }
        var (ruleset, counters) = table.ToRuleset(placements);
        var carry = new CounterCarry(
            counters.Where(c => c.Key.Rule is not null).ToDictionary(c => new RuleSlot(c.Key.Chain, c.Key.Rule!.Value), c => Start(c.Value)),
            counters.Where(c => c.Key.Rule is null).ToDictionary(c => c.Key.Chain, c => Start(c.Value), StringComparer.Ordinal));
        // Where the deployment is, it stays, unless told otherwise.
        var netns = options?.NetworkNamespace ?? manifest?.Chains.Select(c => c.NetworkNamespace).FirstOrDefault(n => n is not null);
        var published = Publisher.PublishHeld(ruleset, (options ?? new PublishOptions()) with { NetworkNamespace = netns, Carry = carry }, progress);
        return new IptablesResult(output, published);
    }

    private static IptablesResult ReadOnly(string name, IReadOnlyList<IptablesCommand> commands)
    {
        Privileges.Require(Privileges.ForReading, "Reading a deployment", asRoot: true);
        Manifest? manifest;
        try
        {
            manifest = Deployments.ReadManifest(name);
        }
        catch (BpfilterException e) when (e.ErrorId == "DeploymentNotFound")
        {
            manifest = null;
        }
        return new IptablesResult(RunAll(Read(name, manifest), commands), null);
    }

    /// <summary>The deployment's table, with what each rule and policy has counted; an empty table when there is none.</summary>
    private static IptablesTable Read(string name, Manifest? manifest)
    {
        if (manifest is null) return IptablesTable.Empty(name);
        if (manifest.Ruleset is not { } yaml)
            throw new BpfilterException("DeploymentIncomplete", FailureCategory.InvalidData,
                $"deployment '{name}' was published by an earlier version of Bpfilter that kept no copy of its ruleset: publish it again");
        var ruleset = Formats.YamlRulesetReader.Read(new StringReader(yaml), $"the manifest of deployment '{name}'");
        var totals = manifest.Chains.ToDictionary(c => c.Name, c => Deployments.Totals(name, c), StringComparer.Ordinal);
        return IptablesTable.FromRuleset(ruleset, counter =>
        {
            ulong packets = 0, bytes = 0;
            foreach (var chain in manifest.Chains)
            {
                if (SlotOf(chain, counter) is not int slot) continue;
                packets += totals[chain.Name][slot].Packets;
                bytes += totals[chain.Name][slot].Bytes;
            }
            return new IptablesCounts(packets, bytes);
        });
    }

    private static IReadOnlyList<string> RunAll(IptablesTable table, IReadOnlyList<IptablesCommand> commands)
    {
        var output = new List<string>();
        for (int i = 0; i < commands.Count; i++)
        {
            try
            {
                output.AddRange(table.Run(commands[i]));
            }
            catch (BpfilterException e)
            {
                throw IptablesCommand.At(e, commands.Count == 1 ? commands[i].ToString() : $"command {i + 1} ({commands[i]})");
            }
        }
        return output;
    }

    /// <summary>The slot of a ruleset counter in a deployed chain's map: its own rule or policy, or a rule of a user chain it reaches; null when the chain does not count it.</summary>
    private static int? SlotOf(ManifestChain chain, RulesetCounter counter)
    {
        if (counter.Chain == chain.Name) return counter.Rule ?? chain.Layout.PolicySlot;
        if (counter.Rule is int rule && chain.UserChains?.Any(u => u.Name == counter.Chain) == true) return chain.Layout.UserChainSlot(counter.Chain, rule);
        return null;
    }

    private static Dictionary<string, HashSet<int>> Slots(Manifest manifest, IEnumerable<RulesetCounter> counters)
    {
        var slots = new Dictionary<string, HashSet<int>>(StringComparer.Ordinal);
        foreach (var counter in counters)
        {
            foreach (var chain in manifest.Chains)
            {
                if (SlotOf(chain, counter) is not int slot) continue;
                if (!slots.TryGetValue(chain.Name, out var set)) slots[chain.Name] = set = [];
                set.Add(slot);
            }
        }
        return slots;
    }

    private static CounterStart Start(TableCounter counter) => counter.From switch
    {
        { Rule: int rule } from => new CounterStart.FromRule(new RuleSlot(from.Chain, rule)),
        { } from => new CounterStart.FromPolicy(from.Chain),
        null => new CounterStart.At(counter.Counts.Packets, counter.Counts.Bytes),
    };
}
