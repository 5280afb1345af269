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
/// <param name="Carry">Where each counter of the new generation starts; null: each rule carries what the same rule (by name, or content) counted in the same chain.</param>
public sealed record PublishOptions(string? NetworkNamespace = null, CounterCarry? Carry = null)
{
    /// <summary>Let the optimizer classify long runs of rules (<see cref="CompileOptions.Optimize"/>); false compiles them one by one.</summary>
    public bool Optimize { get; init; } = true;
}

/// <summary>A rule of a ruleset by place: its chain (hooked or user chain) and its 0-based index there.</summary>
public readonly record struct RuleSlot(string Chain, int Index);

/// <summary>Where one counter of a new generation starts.</summary>
public abstract record CounterStart
{
    /// <summary>Goes on from what a rule of the deployed generation counted (a user chain's rule: summed over the chains that reach it).</summary>
    public sealed record FromRule(RuleSlot Rule) : CounterStart;

    /// <summary>Goes on from what the policy of a hooked chain of the deployed generation counted.</summary>
    public sealed record FromPolicy(string Chain) : CounterStart;

    /// <summary>Starts at these counts.</summary>
    public sealed record At(ulong Packets, ulong Bytes) : CounterStart;
}

/// <summary>
/// Where the counters of a new generation start, for callers that know which deployed rule each new rule goes on
/// from (iptables commands: a rule that -I moved keeps its counts, one that -R replaced starts at zero, though its
/// name and content may be those of the old one). Rules and policies not listed start at zero; the not-IP and
/// malformed counters carry over by chain name. A user chain's rule is counted in each hooked chain that reaches it:
/// its start goes to the first of them, so the sum is what was asked.
/// </summary>
public sealed record CounterCarry(IReadOnlyDictionary<RuleSlot, CounterStart> Rules, IReadOnlyDictionary<string, CounterStart> Policies);

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

        using var lockFile = Lock(name);
        return PublishHeld(ruleset, options, progress, Step);
    }

    /// <summary>The deployment's lock, which every publisher of the name holds while it reads and changes the deployment.</summary>
    internal static FileLock Lock(string name) => FileLock.Acquire(DeploymentPaths.Lock(name), LockTimeout);

    /// <summary>
    /// Publishes for a caller that holds <see cref="Lock"/> and has checked the privileges and bpffs: so it can read
    /// the deployment, decide the new ruleset from it, and publish it with no other publisher in between.
    /// </summary>
    internal static DeploymentInfo PublishHeld(Ruleset ruleset, PublishOptions options, Action<string> progress, Action<string>? step = null)
    {
        var name = ruleset.Name;
        if (options.NetworkNamespace is { } ns) Names.CheckNamespace(ns);
        DeploymentPaths.EnsureDirectories(name);
        try
        {
            return PublishLocked(ruleset, options, progress, step ?? progress);
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

        var compiled = ruleset.Chains.Select(chain =>
        {
            // Interfaces that rules name are resolved where the chain runs.
            var netns = chain.NetworkNamespace ?? options.NetworkNamespace;
            var compileOptions = new CompileOptions(ifname => Kernel.NetworkNamespace.Run(netns, () => Interfaces.IndexOf(ifname, netns))) { Optimize = options.Optimize };
            return ChainCompiler.Compile(ruleset, chain, compileOptions);
        }).ToList();
        foreach (var chain in compiled.Where(c => c.Chain.Mode == XdpMode.Offload)) OffloadProfile.Check(chain);
        Step($"compiled {compiled.Count} chain(s), {compiled.Sum(c => c.Program.Instructions.Count)} instructions");

        var staged = new List<StagedChain>();
        var sets = new Dictionary<string, (NamedSet Set, MapSpec Spec, BpfMap Map)>(StringComparer.Ordinal);
        BpfMap? limits = null, log = null;
        try
        {
            foreach (var chain in compiled) staged.Add(StagedChain.Resolve(chain, options.NetworkNamespace));
            foreach (var s in staged) s.Counters = BpfMap.Create(s.Compiled.Counters);
            // A set is one map, shared by every program that looks it up.
            foreach (var (set, spec) in compiled.SelectMany(c => c.Sets))
            {
                if (sets.ContainsKey(set.Name)) continue;
                var map = BpfMap.Create(spec);
                sets[set.Name] = (set, spec, map);
                foreach (var key in SetMaps.KeysOf(set)) map.Update(key, SetMaps.Present);
            }
            // So is the limit state: one bucket per rule, whichever programs run the rule.
            var limitSpec = compiled.Select(c => c.Limits).FirstOrDefault(l => l is not null);
            if (limitSpec is not null) limits = BpfMap.Create(limitSpec);
            var logSpec = compiled.Select(c => c.Log).FirstOrDefault(l => l is not null);
            if (logSpec is not null) log = BpfMap.Create(logSpec);
            Step($"created maps ({sets.Count} set(s), {sets.Values.Sum(s => SetMaps.EntryCount(s.Set))} member key(s))");
            foreach (var s in staged)
                foreach (var table in s.Compiled.LookupTables) s.Tables.Add(BpfMap.CreateFrozen(table.Map, table.Entries));
            if (staged.Any(s => s.Tables.Count > 0))
                Step($"filled {staged.Sum(s => s.Tables.Count)} classifier table(s), {staged.Sum(s => s.Compiled.LookupTables.Sum(t => t.Entries.Count))} entries");
            foreach (var s in staged)
            {
                var maps = new Dictionary<MapSpec, BpfMap> { [s.Compiled.Counters] = s.Counters! };
                foreach (var (set, spec) in s.Compiled.Sets) maps[spec] = sets[set.Name].Map;
                if (s.Compiled.Limits is { } limitMap) maps[limitMap] = limits!;
                if (s.Compiled.Log is { } logMap) maps[logMap] = log!;
                foreach (var (table, map) in s.Compiled.LookupTables.Zip(s.Tables)) maps[table.Map] = map;
                s.Program = LoadedProgram.Load(s.Compiled.Program, maps, s.Compiled.Chain.Mode == XdpMode.Offload ? s.Ifindex : 0);
            }
            Step("verifier accepted every program");

            foreach (var s in staged) s.Plan(previous, generation, name);
            var manifestSets = sets.Values.Select(s => new ManifestSet(s.Set.Name, s.Set.Type, $"set-{s.Set.Name}-{generation}",
                s.Set.Elements.Select(e => e.ToString()).ToList())).ToList();
            var limitsPin = limits is null ? null : $"limits-{generation}";
            var logPin = log is null ? null : $"log-{generation}";
            var next = new Manifest(Manifest.CurrentFormat, name, generation, DateTimeOffset.UtcNow, ruleset.SourcePath,
                staged.Select(s => s.Planned!).ToList(), manifestSets, limitsPin, logPin, log is null ? null : LogMaps.Entries(ruleset),
                Formats.YamlRulesetWriter.Write(ruleset),
                DeploymentConntrack.Needed(name, staged.Select(s => (s.Compiled, s.NetworkNamespace, s.NetworkNamespaceInode))));
            try
            {
                foreach (var set in manifestSets) sets[set.Name].Map.Pin(DeploymentPaths.Pin(name, set.Pin));
                if (limitsPin is not null) limits!.Pin(DeploymentPaths.Pin(name, limitsPin));
                if (logPin is not null) log!.Pin(DeploymentPaths.Pin(name, logPin));
            }
            catch
            {
                Sweep(name, previous);
                throw;
            }
            Commit(name, staged, previous, next, options.Carry, progress);
            Step("attached");
            return Deployments.Describe(ManifestStore.Read(name)!);
        }
        finally
        {
            foreach (var s in staged) s.Dispose();
            foreach (var set in sets.Values) set.Map.Dispose();
            limits?.Dispose();
            log?.Dispose();
        }
    }

    private static void Commit(string name, List<StagedChain> staged, Manifest? previous, Manifest next, CounterCarry? carry, Action<string> progress)
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
            DeploymentConntrack.Ensure(name, next, previous, undo, progress); // before any chain that asks for state runs

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

        var final = next with
        {
            Chains = carry is null
                ? next.Chains.Select(c => c with { Bases = CarriedBases(name, c, previous) }).ToList()
                : ChosenBases(name, next.Chains, previous, carry),
        };
        WriteManifest(name, final, DeploymentPaths.ManifestPin);
        File.Delete(DeploymentPaths.Pin(name, DeploymentPaths.NextManifestPin));
        Sweep(name, final);
        DeploymentConntrack.ReleaseUnneeded(previous, final, progress);
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

    /// <summary>For each slot of the new chain: what the same rule (by name, or content) counted until now, in the same chain.</summary>
    private static IReadOnlyList<CounterBase> CarriedBases(string name, ManifestChain chain, Manifest? previous)
    {
        var layout = chain.Layout;
        var bases = Enumerable.Repeat(CounterBase.Zero, layout.SlotCount).ToArray();
        var old = previous?.Chains.FirstOrDefault(c => c.Name == chain.Name && c.Hook == chain.Hook);
        if (old is null) return bases;
        var totals = Deployments.Totals(name, old);
        var oldLayout = old.Layout;
        void Carry(IReadOnlyList<ManifestRule> rules, Func<int, int> slotOf, IReadOnlyList<ManifestRule>? oldRules, Func<int, int> oldSlotOf)
        {
            if (oldRules is null) return;
            // Rules with the same key (identical unnamed rules) carry in order: the second copy goes on from the old second copy.
            var byKey = oldRules.Select((r, i) => (r.Key, i)).GroupBy(x => x.Key).ToDictionary(g => g.Key, g => new Queue<int>(g.Select(x => x.i)));
            for (int i = 0; i < rules.Count; i++)
                if (byKey.TryGetValue(rules[i].Key, out var same) && same.TryDequeue(out var j)) bases[slotOf(i)] = totals[oldSlotOf(j)];
        }
        Carry(chain.Rules, i => i, old.Rules, j => j);
        foreach (var user in chain.UserChains ?? [])
        {
            var oldUser = old.UserChains?.FirstOrDefault(u => u.Name == user.Name);
            Carry(user.Rules, i => layout.UserChainSlot(user.Name, i), oldUser?.Rules, j => oldLayout.UserChainSlot(user.Name, j));
        }
        bases[layout.PolicySlot] = totals[oldLayout.PolicySlot];
        bases[layout.NotIpSlot] = totals[oldLayout.NotIpSlot];
        bases[layout.MalformedSlot] = totals[oldLayout.MalformedSlot];
        return bases;
    }

    /// <summary>The bases <paramref name="carry"/> asks for, from what the previous generation counted until now.</summary>
    private static List<ManifestChain> ChosenBases(string name, IReadOnlyList<ManifestChain> chains, Manifest? previous, CounterCarry carry)
    {
        var ruleTotals = new Dictionary<RuleSlot, CounterBase>();
        var policyTotals = new Dictionary<string, CounterBase>(StringComparer.Ordinal);
        var otherTotals = new Dictionary<string, (CounterBase NotIp, CounterBase Malformed)>(StringComparer.Ordinal);
        void Add(RuleSlot slot, CounterBase counts) =>
            ruleTotals[slot] = ruleTotals.TryGetValue(slot, out var sum) ? new CounterBase(sum.Packets + counts.Packets, sum.Bytes + counts.Bytes) : counts;
        foreach (var old in previous?.Chains ?? [])
        {
            var totals = Deployments.Totals(name, old);
            var layout = old.Layout;
            for (int i = 0; i < old.Rules.Count; i++) Add(new RuleSlot(old.Name, i), totals[i]);
            foreach (var user in old.UserChains ?? [])
                for (int i = 0; i < user.Rules.Count; i++) Add(new RuleSlot(user.Name, i), totals[layout.UserChainSlot(user.Name, i)]);
            policyTotals[old.Name] = totals[layout.PolicySlot];
            otherTotals[old.Name] = (totals[layout.NotIpSlot], totals[layout.MalformedSlot]);
        }
        CounterBase Start(CounterStart? start) => start switch
        {
            CounterStart.FromRule r => ruleTotals.GetValueOrDefault(r.Rule, CounterBase.Zero),
            CounterStart.FromPolicy p => policyTotals.GetValueOrDefault(p.Chain, CounterBase.Zero),
            CounterStart.At at => new CounterBase(at.Packets, at.Bytes),
            _ => CounterBase.Zero,
        };
        var started = new HashSet<string>(StringComparer.Ordinal); // user chains whose start one hooked chain holds already
        return chains.Select(chain =>
        {
            var layout = chain.Layout;
            var bases = Enumerable.Repeat(CounterBase.Zero, layout.SlotCount).ToArray();
            for (int i = 0; i < chain.Rules.Count; i++) bases[i] = Start(carry.Rules.GetValueOrDefault(new RuleSlot(chain.Name, i)));
            foreach (var user in chain.UserChains ?? [])
            {
                if (!started.Add(user.Name)) continue;
                for (int i = 0; i < user.Rules.Count; i++)
                    bases[layout.UserChainSlot(user.Name, i)] = Start(carry.Rules.GetValueOrDefault(new RuleSlot(user.Name, i)));
            }
            bases[layout.PolicySlot] = Start(carry.Policies.GetValueOrDefault(chain.Name));
            if (otherTotals.TryGetValue(chain.Name, out var other)) (bases[layout.NotIpSlot], bases[layout.MalformedSlot]) = other;
            return chain with { Bases = bases };
        }).ToList();
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

        /// <summary>The optimizer's filled maps; the program holds them once loaded.</summary>
        public List<BpfMap> Tables { get; } = new();
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
                Program!.Info().Id, ManifestRules(chain.Rules), Enumerable.Repeat(CounterBase.Zero, Compiled.Layout.SlotCount).ToList(),
                Compiled.Layout.UserChains.Count == 0 ? null
                    : Compiled.Layout.UserChains.Select(u => new ManifestUserChain(u.Chain, ManifestRules(Compiled.Ruleset!.FindUserChain(u.Chain)!.Rules))).ToList());
        }

        private static List<ManifestRule> ManifestRules(IReadOnlyList<Rule> rules) =>
            rules.Select(r => new ManifestRule(r.Name, r.Match.ToString(), r.Verdict)).ToList();

        private static bool LinkAlive(string deployment, ManifestChain chain)
        {
            using var link = BpfLink.OpenPinned(DeploymentPaths.Pin(deployment, chain.LinkPins[0]));
            return link is not null && link.IsAttached();
        }

        public void Dispose()
        {
            Program?.Dispose();
            Counters?.Dispose();
            foreach (var table in Tables) table.Dispose();
        }
    }
}
