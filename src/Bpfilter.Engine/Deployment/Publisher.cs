using System.Diagnostics;
using Bpfilter.Engine.Compiler;
using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Kernel;
using Bpfilter.Engine.Kernel.Links;
using Bpfilter.Engine.Kernel.Native;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Deployment;

/// <summary>Options of one publish.</summary>
/// <param name="NetworkNamespace">A name under /run/netns or an absolute path, for chains that name none; null for this process's namespace.</param>
public sealed record PublishOptions(string? NetworkNamespace = null);

/// <summary>
/// Compiles, loads, attaches and pins a ruleset under its name. Everything that can fail before the kernel
/// changes (compile, verifier, interface and cgroup lookup) runs first. The plan is pinned as manifest-next
/// before any link changes, so a publisher killed at any moment leaves enough for the next one to finish
/// the job (<see cref="Recovery"/>). Links that can be updated are (BPF_LINK_UPDATE: never a moment without a
/// program); netfilter links are replaced by new ones at the spare priority, attached before the old go.
/// Any failure undoes what was done and leaves the previous deployment attached and counting.
/// </summary>
public static class Publisher
{
    internal static readonly TimeSpan LockTimeout = TimeSpan.FromSeconds(30);

    public static DeploymentInfo Publish(Ruleset ruleset, PublishOptions options, Action<string>? progress = null)
    {
        progress ??= _ => { };
        if (options.NetworkNamespace is { } ns) Names.CheckNamespace(ns);
        Privileges.Require(Privileges.ForDeployment, "Publishing a ruleset", asRoot: true);
        BpfFs.EnsureMounted();
        var name = ruleset.Name;
        var clock = Stopwatch.StartNew();
        void Step(string what)
        {
            progress($"{what} ({clock.Elapsed.TotalMilliseconds:0.0} ms)");
            clock.Restart();
        }

        using var lockFile = FileLock.Acquire(DeploymentPaths.Lock(name), LockTimeout);
        DeploymentPaths.EnsureDirectories(name);
        try
        {
            return PublishLocked(ruleset, options, progress, Step);
        }
        catch when (ManifestStore.Read(name) is null && !Directory.EnumerateFileSystemEntries(DeploymentPaths.Directory(name)).Any())
        {
            Directory.Delete(DeploymentPaths.Directory(name)); // a first publish that failed leaves no empty deployment behind
            throw;
        }
    }

    private static DeploymentInfo PublishLocked(Ruleset ruleset, PublishOptions options, Action<string> progress, Action<string> Step)
    {
        var name = ruleset.Name;
        Recovery.Complete(name, progress);
        var previous = ManifestStore.Read(name);
        long generation = (previous?.Generation ?? 0) + 1;

        var compiled = ruleset.Chains.Select(ChainCompiler.Compile).ToList();
        foreach (var chain in compiled.Where(c => c.Chain.Mode == XdpMode.Offload)) OffloadProfile.Check(chain);
        Step($"compiled {compiled.Count} chain(s), {compiled.Sum(c => c.Program.Instructions.Count)} instructions");

        var staged = new List<StagedChain>();
        try
        {
            foreach (var chain in compiled) staged.Add(StagedChain.Resolve(chain, options.NetworkNamespace));
            foreach (var s in staged) s.Counters = BpfMap.Create(s.Compiled.Counters);
            Step("created maps");
            foreach (var s in staged)
                s.Program = LoadedProgram.Load(s.Compiled.Program, new Dictionary<MapSpec, BpfMap> { [s.Compiled.Counters] = s.Counters! },
                    s.Compiled.Chain.Mode == XdpMode.Offload ? s.Ifindex : 0);
            Step("verifier accepted every program");

            foreach (var s in staged) s.Plan(previous, generation, name);
            var next = new Manifest(Manifest.CurrentFormat, name, generation, DateTimeOffset.UtcNow, ruleset.SourcePath,
                staged.Select(s => s.Planned!).ToList());
            Commit(name, staged, previous, next, progress);
            Step("attached");
            return Deployments.Describe(ManifestStore.Read(name)!);
        }
        finally
        {
            foreach (var s in staged) s.Dispose();
        }
    }

    private static void Commit(string name, List<StagedChain> staged, Manifest? previous, Manifest next, Action<string> progress)
    {
        var undo = new Stack<Action>();
        try
        {
            foreach (var s in staged)
            {
                s.Counters!.Pin(DeploymentPaths.Pin(name, s.Planned!.CountersPin));
                s.Program!.Pin(DeploymentPaths.Pin(name, s.Planned.ProgramPin));
            }
            WriteManifest(name, next, DeploymentPaths.NextManifestPin);
            undo.Push(() => File.Delete(DeploymentPaths.Pin(name, DeploymentPaths.NextManifestPin)));

            foreach (var s in staged)
            {
                var chain = s.Planned!;
                if (s.Reused is { } old && old.Hook.Target() != HookTarget.Namespace)
                {
                    using var link = BpfLink.OpenPinned(DeploymentPaths.Pin(name, old.LinkPins[0]))!;
                    using var oldProgram = LoadedProgram.OpenPinned(DeploymentPaths.Pin(name, old.ProgramPin)) ?? LoadedProgram.OpenById(old.ProgramId);
                    link.Update(s.Program!.Fd, expectedCurrent: oldProgram.Fd);
                    // Undoing reopens the old program from its pin, which stays until the commit sweeps it.
                    undo.Push(() =>
                    {
                        using var previousProgram = LoadedProgram.OpenPinned(DeploymentPaths.Pin(name, old.ProgramPin));
                        using var sameLink = BpfLink.OpenPinned(DeploymentPaths.Pin(name, old.LinkPins[0]));
                        if (previousProgram is not null) sameLink?.Update(previousProgram.Fd);
                    });
                    progress($"replaced the program of {chain.Name} ({HookNames.ToName(chain.Hook)}) atomically");
                    continue;
                }
                foreach (var blocker in s.Displaced)
                {
                    // Native and generic XDP cannot share an interface: a mode change detaches the old program first.
                    foreach (var pin in blocker.LinkPins) Deployments.DetachPin(DeploymentPaths.Pin(name, pin));
                    progress($"detached {blocker.Name} first: {blocker.Target} changes XDP mode");
                }
                foreach (var link in ChainAttacher.Attach(name, chain, s.Program!)) link.Dispose(); // the pins hold them now
                undo.Push(() =>
                {
                    foreach (var pin in chain.LinkPins) Deployments.DetachPin(DeploymentPaths.Pin(name, pin));
                });
                progress($"attached {chain.Name} at {HookNames.ToName(chain.Hook)}" + (chain.Target is null ? "" : $" on {chain.Target}")
                    + (chain.Priority is int p ? $", priority {p}" : ""));
            }
        }
        catch
        {
            while (undo.TryPop(out var step))
            {
                try { step(); } catch (BpfilterException) { /* best effort: keep undoing the rest */ }
            }
            Sweep(name, previous);
            throw;
        }

        var final = next with { Chains = next.Chains.Select(c => c with { Bases = CarriedBases(name, c, previous) }).ToList() };
        WriteManifest(name, final, DeploymentPaths.ManifestPin);
        File.Delete(DeploymentPaths.Pin(name, DeploymentPaths.NextManifestPin));
        Sweep(name, final);
    }

    /// <summary>Pins a manifest map under a temporary name and renames it over <paramref name="pin"/>: readers see the old or the new.</summary>
    internal static void WriteManifest(string name, Manifest manifest, string pin)
    {
        using var map = ManifestStore.Write(manifest);
        var temporary = DeploymentPaths.Pin(name, $"{pin}-tmp");
        File.Delete(temporary);
        map.Pin(temporary);
        BpfFs.Rename(temporary, DeploymentPaths.Pin(name, pin));
    }

    /// <summary>Detaches and removes every pin of the directory that <paramref name="keep"/> does not list.</summary>
    internal static void Sweep(string name, Manifest? keep)
    {
        var wanted = new HashSet<string>(keep?.Pins ?? [], StringComparer.Ordinal) { DeploymentPaths.ManifestPin, DeploymentPaths.NextManifestPin };
        foreach (var path in Directory.EnumerateFiles(DeploymentPaths.Directory(name)))
        {
            if (wanted.Contains(Path.GetFileName(path))) continue;
            Deployments.DetachPin(path);
        }
    }

    /// <summary>For each slot of the new chain: what the same rule (by name, or content) counted until now.</summary>
    private static IReadOnlyList<CounterBase> CarriedBases(string name, ManifestChain chain, Manifest? previous)
    {
        var layout = new CounterLayout(chain.Rules.Count);
        var bases = Enumerable.Repeat(CounterBase.Zero, layout.SlotCount).ToArray();
        var old = previous?.Chains.FirstOrDefault(c => c.Name == chain.Name && c.Hook == chain.Hook);
        if (old is null) return bases;
        var totals = Deployments.Totals(name, old);
        var oldLayout = new CounterLayout(old.Rules.Count);
        var byKey = old.Rules.Select((r, i) => (r.Key, i)).GroupBy(x => x.Key).ToDictionary(g => g.Key, g => g.First().i);
        for (int i = 0; i < chain.Rules.Count; i++)
            if (byKey.TryGetValue(chain.Rules[i].Key, out var j)) bases[i] = totals[j];
        bases[layout.PolicySlot] = totals[oldLayout.PolicySlot];
        bases[layout.NotIpv4Slot] = totals[oldLayout.NotIpv4Slot];
        bases[layout.MalformedSlot] = totals[oldLayout.MalformedSlot];
        return bases;
    }

    /// <summary>One chain on its way into the kernel; owns its fds until the publish ends.</summary>
    private sealed class StagedChain : IDisposable
    {
        private StagedChain(CompiledChain compiled) => Compiled = compiled;

        public CompiledChain Compiled { get; }
        public string? NetworkNamespace { get; private init; }
        public ulong NetworkNamespaceInode { get; private init; }
        public string? Target { get; private init; }
        public uint Ifindex { get; private init; }
        public BpfMap? Counters { get; set; }
        public LoadedProgram? Program { get; set; }
        public ManifestChain? Planned { get; private set; }

        /// <summary>The previous generation's chain whose link this one takes over, if any.</summary>
        public ManifestChain? Reused { get; private set; }

        /// <summary>Previous chains that must be detached before this one can attach (an XDP mode change).</summary>
        public List<ManifestChain> Displaced { get; } = new();

        /// <summary>Finds the namespace, interface index and cgroup directory: all before anything changes.</summary>
        public static StagedChain Resolve(CompiledChain compiled, string? defaultNamespace)
        {
            var chain = compiled.Chain;
            var netns = chain.NetworkNamespace ?? defaultNamespace;
            ulong inode = netns is null ? LibC.Inode("/proc/self/ns/net") : Kernel.NetworkNamespace.Inode(netns);
            string? target = chain.Interface;
            uint ifindex = 0;
            if (chain.Interface is { } ifname) ifindex = Kernel.NetworkNamespace.Run(netns, () => Interfaces.IndexOf(ifname, netns));
            if (chain.Cgroup is { } cgroup)
            {
                target = Cgroups.Resolve(cgroup);
                var hierarchy = Cgroups.Cgroup2Mount();
                if (target != hierarchy && !target.StartsWith(hierarchy.TrimEnd('/') + "/", StringComparison.Ordinal))
                    throw new BpfilterException("CgroupNotFound", FailureCategory.ObjectNotFound,
                        $"chain '{chain.Name}': {target} is not a cgroup directory: the cgroup v2 hierarchy is mounted at {hierarchy}");
                if (!Directory.Exists(target))
                    throw new BpfilterException("CgroupNotFound", FailureCategory.ObjectNotFound, $"chain '{chain.Name}': there is no cgroup directory {target}");
            }
            return new StagedChain(compiled) { NetworkNamespace = netns, NetworkNamespaceInode = inode, Target = target, Ifindex = ifindex };
        }

        public void Plan(Manifest? previous, long generation, string deployment)
        {
            var chain = Compiled.Chain;
            var sameTarget = previous?.Chains.Where(old => old.Hook == chain.Hook && old.Target == Target && old.NetworkNamespaceInode == NetworkNamespaceInode).ToList() ?? [];
            int? priority = chain.Priority;
            IReadOnlyList<string> linkPins = ChainAttacher.LinkPins(chain.Name, chain.Hook, generation);
            if (chain.Hook.IsNetfilter())
            {
                // Netfilter has no link update: the new links go in at the spare priority (the chain's, or one below it) before the old ones leave.
                if (sameTarget.Any(old => old.Priority == chain.Priority)) priority = chain.Priority - 1;
            }
            else if (sameTarget.FirstOrDefault(old => old.Mode == chain.Mode && old.Order == chain.Order && LinkAlive(deployment, old)) is { } reusable)
            {
                Reused = reusable;
                linkPins = reusable.LinkPins;
            }
            else if (chain.Hook == Hook.Xdp)
            {
                Displaced.AddRange(sameTarget);
            }
            Planned = new ManifestChain(chain.Name, chain.Hook, Target, NetworkNamespace, NetworkNamespaceInode, Ifindex, chain.Mode, chain.Order,
                priority, chain.Policy, linkPins, $"{chain.Name}-prog-{generation}", $"{chain.Name}-counters-{generation}",
                Program!.Info().Id, chain.Rules.Select(r => new ManifestRule(r.Name, r.Match.ToString(), r.Verdict)).ToList(),
                Enumerable.Repeat(CounterBase.Zero, Compiled.Layout.SlotCount).ToList());
        }

        private static bool LinkAlive(string deployment, ManifestChain chain)
        {
            using var link = BpfLink.OpenPinned(DeploymentPaths.Pin(deployment, chain.LinkPins[0]));
            return link is not null && link.IsAttached();
        }

        public void Dispose()
        {
            Program?.Dispose();
            Counters?.Dispose();
        }
    }
}
