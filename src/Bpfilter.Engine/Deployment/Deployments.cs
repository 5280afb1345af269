using System.Buffers.Binary;
using System.Globalization;
using Bpfilter.Engine.Compiler;
using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Kernel;
using Bpfilter.Engine.Kernel.Links;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Deployment;

/// <summary>Reads back what is deployed (by this process or any earlier one) and removes deployments.</summary>
public static class Deployments
{
    /// <summary>Names of every deployment pinned under /sys/fs/bpf/bpfilter, sorted.</summary>
    public static IReadOnlyList<string> Names()
    {
        Privileges.Require(Privileges.ForReading, "Reading deployments", asRoot: true);
        if (!BpfFs.IsMounted() || !Directory.Exists(DeploymentPaths.Root)) return [];
        DeploymentPaths.CheckRoot();
        return Directory.EnumerateDirectories(DeploymentPaths.Root).Select(Path.GetFileName)
            .Where(Rules.Names.IsDeploymentName).Cast<string>().Order(StringComparer.Ordinal).ToList();
    }

    public static DeploymentInfo Get(string name)
    {
        Privileges.Require(Privileges.ForReading, "Reading a deployment", asRoot: true);
        return Describe(ReadManifest(name));
    }

    /// <summary>The ruleset the deployment was last published from, as it was (set members as published, not as changed since).</summary>
    public static Ruleset PublishedRuleset(string name)
    {
        Privileges.Require(Privileges.ForReading, "Reading a deployment");
        var manifest = ReadManifest(name);
        if (manifest.Ruleset is not { } yaml)
            throw new BpfilterException("DeploymentIncomplete", FailureCategory.InvalidData,
                $"deployment '{name}' was published by an earlier version of Bpfilter that kept no copy of its ruleset: publish it again");
        return Formats.YamlRulesetReader.Read(new StringReader(yaml), $"the manifest of deployment '{name}'");
    }

    /// <summary>The programs of a deployment's chains, with what the kernel says about each.</summary>
    public static IReadOnlyList<DeployedProgram> Programs(string name)
    {
        Privileges.Require(Privileges.ForReading, "Reading a deployment", asRoot: true);
        var manifest = ReadManifest(name);
        return manifest.Chains.Select(c =>
        {
            using var program = LoadedProgram.OpenPinned(DeploymentPaths.Pin(name, c.ProgramPin));
            var info = program?.Info();
            return new DeployedProgram(name, c.Name, c.Hook, c.Target, c.NetworkNamespace, c.Mode, c.ProgramId, info?.Tag ?? "",
                (int)((info?.XlatedBytes ?? 0) / Instruction.Size), info?.JitedBytes ?? 0,
                info is null ? default : BootTime.AddTicks((long)(info.LoadTimeBootNs / 100)), c.Rules.Count, StateOf(name, c));
        }).ToList();
    }

    /// <summary>
    /// One row per rule, then the policy and the not-IP and malformed rows, for every hooked chain of the deployment;
    /// then one row per rule of each user chain, summed over the hooked chains that reach it.
    /// </summary>
    public static IReadOnlyList<CounterRow> Counters(string name)
    {
        Privileges.Require(Privileges.ForReading, "Reading counters", asRoot: true);
        var manifest = ReadManifest(name);
        var rows = new List<CounterRow>();
        var userRows = new Dictionary<(string, int), (ManifestRule Rule, ulong Packets, ulong Bytes)>();
        foreach (var chain in manifest.Chains)
        {
            var totals = Totals(name, chain);
            var layout = chain.Layout;
            for (int i = 0; i < chain.Rules.Count; i++)
                rows.Add(new CounterRow(name, chain.Name, i + 1, chain.Rules[i].Name ?? $"#{i + 1}", CounterKind.Rule, chain.Rules[i].Action, totals[i].Packets, totals[i].Bytes));
            rows.Add(new CounterRow(name, chain.Name, null, "(policy)", CounterKind.Policy, chain.Policy, totals[layout.PolicySlot].Packets, totals[layout.PolicySlot].Bytes));
            rows.Add(new CounterRow(name, chain.Name, null, "(not ip)", CounterKind.NotIp, Verdict.Accept, totals[layout.NotIpSlot].Packets, totals[layout.NotIpSlot].Bytes));
            rows.Add(new CounterRow(name, chain.Name, null, "(malformed)", CounterKind.Malformed, Verdict.Drop, totals[layout.MalformedSlot].Packets, totals[layout.MalformedSlot].Bytes));
            foreach (var user in chain.UserChains ?? [])
            {
                for (int i = 0; i < user.Rules.Count; i++)
                {
                    var slot = totals[layout.UserChainSlot(user.Name, i)];
                    userRows.TryGetValue((user.Name, i), out var sum);
                    userRows[(user.Name, i)] = (user.Rules[i], sum.Packets + slot.Packets, sum.Bytes + slot.Bytes);
                }
            }
        }
        foreach (var ((chainName, index), (rule, packets, bytes)) in userRows.OrderBy(r => r.Key.Item1, StringComparer.Ordinal).ThenBy(r => r.Key.Item2))
            rows.Add(new CounterRow(name, chainName, index + 1, rule.Name ?? $"#{index + 1}", CounterKind.Rule, rule.Action, packets, bytes));
        return rows;
    }

    /// <summary>Per slot: the pinned map's count (summed over CPUs for per-CPU maps) plus what earlier generations carried.</summary>
    internal static CounterBase[] Totals(string name, ManifestChain chain)
    {
        using var map = BpfMap.OpenPinned(DeploymentPaths.Pin(name, chain.CountersPin), readOnly: true)
            ?? throw new BpfilterException("DeploymentIncomplete", FailureCategory.InvalidData,
                $"deployment '{name}' lists counters {chain.CountersPin}, but nothing is pinned there");
        var layout = chain.Layout;
        var totals = new CounterBase[layout.SlotCount];
        Span<byte> key = stackalloc byte[4];
        var single = new byte[CounterLayout.ValueSize];
        for (int slot = 0; slot < layout.SlotCount; slot++)
        {
            ulong packets = chain.Bases[slot].Packets, bytes = chain.Bases[slot].Bytes;
            IEnumerable<byte[]> values;
            if (map.Type == MapType.PerCpuArray) values = map.LookupPerCpu((uint)slot);
            else
            {
                BinaryPrimitives.WriteUInt32LittleEndian(key, (uint)slot);
                map.Lookup(key, single);
                values = [single];
            }
            foreach (var value in values)
            {
                packets += BinaryPrimitives.ReadUInt64LittleEndian(value);
                bytes += BinaryPrimitives.ReadUInt64LittleEndian(value.AsSpan(8));
            }
            totals[slot] = new CounterBase(packets, bytes);
        }
        return totals;
    }

    /// <summary>
    /// Sets counter slots of deployed chains (by chain name) to zero in place, so the programs count on from zero with
    /// no reload, and their carried bases in the manifest too. The caller holds the deployment's lock and read
    /// <paramref name="manifest"/> under it.
    /// </summary>
    internal static void ZeroCounters(string name, Manifest manifest, IReadOnlyDictionary<string, HashSet<int>> slots)
    {
        var chains = manifest.Chains.Select(chain =>
        {
            if (!slots.TryGetValue(chain.Name, out var zero) || zero.Count == 0) return chain;
            using var map = BpfMap.OpenPinned(DeploymentPaths.Pin(name, chain.CountersPin))
                ?? throw new BpfilterException("DeploymentIncomplete", FailureCategory.InvalidData,
                    $"deployment '{name}' lists counters {chain.CountersPin}, but nothing is pinned there");
            // A per-CPU array takes every CPU's value at once, each at a stride of the value size rounded up to 8.
            var value = new byte[map.Type == MapType.PerCpuArray ? ((CounterLayout.ValueSize + 7) & ~7) * PossibleCpus.Count : CounterLayout.ValueSize];
            Span<byte> key = stackalloc byte[4];
            foreach (var slot in zero)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(key, (uint)slot);
                map.Update(key, value);
            }
            return chain with { Bases = chain.Bases.Select((b, i) => zero.Contains(i) ? CounterBase.Zero : b).ToList() };
        }).ToList();
        Publisher.WriteManifest(name, manifest with { Chains = chains }, DeploymentPaths.ManifestPin);
    }

    /// <summary>
    /// Throws PrivilegeMissing naming everything unpublishing needs (root, and what publishing needs) that this
    /// process lacks: for callers that would otherwise first fail at reading the names, which needs less.
    /// </summary>
    public static void RequireUnpublishPrivileges() => Privileges.Require(Privileges.ForDeployment, "Unpublishing a deployment", asRoot: true);

    /// <summary>
    /// Throws PrivilegeMissing naming everything reading the images of a deployment's programs needs (root, CAP_BPF
    /// and, to open a program by id, CAP_SYS_ADMIN) that this process lacks.
    /// </summary>
    public static void RequireImagePrivileges() =>
        Privileges.Require([.. Privileges.ForReading, .. ProgramImage.ByIdCapabilities], "Reading the programs of a deployment", asRoot: true);

    /// <summary>Detaches every link of the deployment and removes its pins; a stale or half-published deployment is removed too.</summary>
    public static void Unpublish(string name)
    {
        RequireUnpublishPrivileges();
        var directory = DeploymentPaths.Directory(name);
        if (!Rules.Names.IsDeploymentName(name) || !BpfFs.IsMounted() || !Directory.Exists(directory)) throw NotFound(name);
        DeploymentPaths.CheckRoot();
        using var lockFile = FileLock.Acquire(DeploymentPaths.Lock(name), Publisher.LockTimeout);
        if (PrivatePaths.IsSymbolicLink(directory))
        {
            File.Delete(directory); // a planted link to another directory: removed, and what it points to left alone
            return;
        }
        // Links first, so no program runs once any pin is gone; whatever the manifest says (it is not read: it may be
        // corrupt), every pin in the directory goes. A symbolic link is removed, never followed to another tool's link.
        foreach (var pin in Directory.EnumerateFiles(directory).Where(p => !PrivatePaths.IsSymbolicLink(p))) DetachIfLink(pin);
        // The conntrack tables are found through the manifests (a corrupt one is passed over), so before their pins go.
        var conntrackLeft = DeploymentConntrack.ReleaseAll(name);
        Directory.Delete(directory, recursive: true); // removes symbolic links as links, like 'rm -r'
        if (conntrackLeft.Count > 0)
            throw new BpfilterException("ConntrackNotReleased", FailureCategory.InvalidOperation,
                $"deployment '{name}' is removed, but what kept connection tracking running for it could not be: {string.Join("; ", conntrackLeft)}");
    }

    /// <summary>Detaches the pin if it is a link, then removes it (a symbolic link is only removed).</summary>
    internal static void DetachPin(string path)
    {
        if (!PrivatePaths.IsSymbolicLink(path)) DetachIfLink(path);
        File.Delete(path);
    }

    internal static DeploymentInfo Describe(Manifest manifest)
    {
        var chains = manifest.Chains.Select(c => new DeployedChain(manifest.Name, c.Name, c.Hook,
            c.Hook.Target() == HookTarget.Interface ? c.Target : null, c.Hook.Target() == HookTarget.Cgroup ? c.Target : null,
            c.NetworkNamespace, c.Mode, c.Priority, c.Policy, c.Rules.Count, c.ProgramId, LinkIds(manifest.Name, c), StateOf(manifest.Name, c), c.Rules)).ToList();
        return new DeploymentInfo(manifest.Name, manifest.Generation, manifest.PublishedAt, manifest.Source, chains);
    }

    private static IReadOnlyList<uint> LinkIds(string deployment, ManifestChain chain) => chain.LinkPins.Select(pin =>
    {
        using var link = BpfLink.OpenPinned(DeploymentPaths.Pin(deployment, pin));
        return link?.Info().Id ?? 0;
    }).ToList();

    private static ChainState StateOf(string deployment, ManifestChain chain)
    {
        if (chain.NetworkNamespace is { } netns && (!NetworkNamespace.Exists(netns) || NetworkNamespace.Inode(netns) != chain.NetworkNamespaceInode))
            return ChainState.NamespaceGone;
        if (chain.Hook.Target() == HookTarget.Cgroup && !Directory.Exists(chain.Target)) return ChainState.CgroupGone;
        foreach (var pin in chain.LinkPins)
        {
            using var link = BpfLink.OpenPinned(DeploymentPaths.Pin(deployment, pin));
            if (link is null) return ChainState.LinkMissing;
            if (!link.IsAttached()) return chain.Hook.Target() == HookTarget.Cgroup ? ChainState.CgroupGone : ChainState.InterfaceGone;
        }
        return ChainState.Attached;
    }

    internal static Manifest ReadManifest(string name)
    {
        if (!Rules.Names.IsDeploymentName(name) || !BpfFs.IsMounted()) throw NotFound(name);
        TidyIfIdle(name);
        return ManifestStore.Read(name) ?? throw NotFound(name);
    }

    /// <summary>
    /// Pins a publisher left behind when it died (a manifest-next plan, or pins of a generation it never finished)
    /// are only seen when nobody holds the lock: readers that may change links then finish or clear them, so what
    /// they show is one whole generation, never a mixture.
    /// </summary>
    private static void TidyIfIdle(string name)
    {
        if (!Directory.Exists(DeploymentPaths.Directory(name))) return;
        try
        {
            Privileges.Require(Privileges.ForDeployment, "Finishing an abandoned publish", asRoot: true);
        }
        catch (BpfilterException)
        {
            return; // a reader without the rights to change links sees the last committed generation
        }
        using var lockFile = FileLock.TryAcquire(DeploymentPaths.Lock(name));
        if (lockFile is not null) Recovery.Complete(name, _ => { });
    }

    private static void DetachIfLink(string pin)
    {
        try
        {
            using var link = BpfLink.OpenPinned(pin);
            if (link is not null && Enum.IsDefined(link.Info().Type)) link.Detach();
        }
        catch (KernelException)
        {
            // Not a link (a map or a program): removing its pin is all it needs.
        }
    }

    internal static DateTimeOffset BootTime
    {
        get
        {
            var line = File.ReadLines("/proc/stat").First(l => l.StartsWith("btime ", StringComparison.Ordinal));
            return DateTimeOffset.FromUnixTimeSeconds(long.Parse(line[6..], CultureInfo.InvariantCulture));
        }
    }

    private static BpfilterException NotFound(string name) =>
        new("DeploymentNotFound", FailureCategory.ObjectNotFound,
            $"no deployment is named '{name}'" + (Names() is { Count: > 0 } names ? $" (deployed: {string.Join(", ", names)})" : " (nothing is deployed)"));
}
