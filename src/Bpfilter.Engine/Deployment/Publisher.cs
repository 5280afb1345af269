using Bpfilter.Engine.Compiler;
using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Kernel;
using Bpfilter.Engine.Kernel.Links;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Deployment;

/// <summary>Options of one publish.</summary>
/// <param name="NetworkNamespace">A name under /run/netns or an absolute path; null for this process's namespace.</param>
public sealed record PublishOptions(string? NetworkNamespace = null);

/// <summary>
/// Compiles, loads, attaches and pins a ruleset under its name. Everything that can fail before the kernel
/// changes (compile, verifier, interface lookup) runs first; an existing deployment is replaced with
/// BPF_LINK_UPDATE, so its interface is never without a program; any failure leaves the previous deployment as it was.
/// </summary>
public static class Publisher
{
    private static readonly TimeSpan LockTimeout = TimeSpan.FromSeconds(30);

    public static DeploymentInfo Publish(Ruleset ruleset, PublishOptions options, Action<string>? progress = null)
    {
        progress ??= _ => { };
        Privileges.Require(Privileges.ForDeployment, "Publishing a ruleset");
        BpfFs.EnsureMounted();
        var netns = options.NetworkNamespace;
        ulong netnsInode = netns is null ? 0 : NetworkNamespace.Inode(netns);

        using var lockFile = FileLock.Acquire(DeploymentPaths.Lock(ruleset.Name), LockTimeout);
        var previous = ManifestStore.Read(ruleset.Name);
        long generation = (previous?.Generation ?? 0) + 1;

        var compiled = ruleset.Chains.Select(ChainCompiler.Compile).ToList();
        progress($"compiled {compiled.Count} chain(s), {compiled.Sum(c => c.Program.Instructions.Count)} instructions");
        var staged = new List<StagedChain>();
        try
        {
            foreach (var chain in compiled)
            {
                var counters = BpfMap.Create(chain.Counters);
                staged.Add(new StagedChain(chain, counters));
                staged[^1].Program = LoadedProgram.Load(chain.Program, new Dictionary<MapSpec, BpfMap> { [chain.Counters] = counters });
                staged[^1].Ifindex = NetworkNamespace.Run(netns, () => Interfaces.IndexOf(chain.Chain.Interface, netns));
            }
            progress("verifier accepted every program");
            var directory = DeploymentPaths.Directory(ruleset.Name);
            Directory.CreateDirectory(directory);
            var kept = new HashSet<string>(StringComparer.Ordinal);
            ApplyLinks(ruleset.Name, staged, previous, netns, netnsInode, generation, kept, progress);

            var manifest = new Manifest(Manifest.CurrentFormat, ruleset.Name, generation, DateTimeOffset.UtcNow, netns, netnsInode,
                ruleset.SourcePath, staged.Select(s => s.ToManifest()).ToList());
            using (var manifestMap = ManifestStore.Write(manifest))
            {
                var temporary = DeploymentPaths.Pin(ruleset.Name, $"{DeploymentPaths.ManifestPin}-{generation}-tmp");
                manifestMap.Pin(temporary);
                BpfFs.Rename(temporary, DeploymentPaths.Pin(ruleset.Name, DeploymentPaths.ManifestPin));
            }
            RemoveStalePins(ruleset.Name, previous, kept);
            progress($"deployment '{ruleset.Name}' is at generation {generation}");
            return Deployments.Describe(manifest);
        }
        finally
        {
            foreach (var s in staged) s.Dispose();
        }
    }

    private static void ApplyLinks(string deployment, List<StagedChain> staged, Manifest? previous, string? netns, ulong netnsInode,
        long generation, HashSet<string> kept, Action<string> progress)
    {
        var undo = new Stack<Action>();
        try
        {
            foreach (var s in staged)
            {
                s.CountersPin = $"{s.Compiled.Chain.Name}-counters-{generation}";
                s.Counters.Pin(DeploymentPaths.Pin(deployment, s.CountersPin));
                undo.Push(() => File.Delete(DeploymentPaths.Pin(deployment, s.CountersPin)));

                var reusable = previous?.Chains.FirstOrDefault(old =>
                    old.Interface == s.Compiled.Chain.Interface && old.Hook == s.Compiled.Chain.Hook && old.Mode == s.Compiled.Chain.Mode
                    && previous.NetworkNamespaceInode == netnsInode);
                var link = reusable is null ? null : XdpLink.OpenPinned(DeploymentPaths.Pin(deployment, reusable.LinkPin));
                if (link is not null && link.Info().Ifindex != 0)
                {
                    s.Link = link;
                    s.PreviousProgram = Bpf.ProgGetFdById(link.Info().ProgramId);
                    link.Update(s.Program!.Fd, expectedCurrent: s.PreviousProgram);
                    s.LinkPin = reusable!.LinkPin;
                    kept.Add(s.LinkPin);
                    undo.Push(() => link.Update(s.PreviousProgram));
                    progress($"replaced the program on {s.Compiled.Chain.Interface} atomically (link {link.Info().LinkId})");
                    continue;
                }
                link?.Dispose();
                if (reusable is not null) DetachPinned(deployment, reusable.LinkPin);
                s.Link = NetworkNamespace.Run(netns, () => XdpLink.Attach(s.Program!, s.Ifindex, s.Compiled.Chain.Interface, s.Compiled.Chain.Mode));
                s.LinkPin = $"{s.Compiled.Chain.Name}-link-{generation}";
                s.Link.Pin(DeploymentPaths.Pin(deployment, s.LinkPin));
                var created = s.Link;
                undo.Push(() => { created.Detach(); File.Delete(DeploymentPaths.Pin(deployment, s.LinkPin)); });
                progress($"attached XDP ({s.Compiled.Chain.Mode.ToString().ToLowerInvariant()}) to {s.Compiled.Chain.Interface}");
            }
        }
        catch
        {
            while (undo.TryPop(out var step))
            {
                try { step(); } catch (BpfilterException) { /* best effort: keep undoing the rest */ }
            }
            throw;
        }
    }

    /// <summary>Unpins what the previous generation had and the new one does not use; unpinning the last reference detaches.</summary>
    private static void RemoveStalePins(string deployment, Manifest? previous, HashSet<string> kept)
    {
        if (previous is null) return;
        foreach (var old in previous.Chains)
        {
            if (!kept.Contains(old.LinkPin)) DetachPinned(deployment, old.LinkPin);
            File.Delete(DeploymentPaths.Pin(deployment, old.CountersPin));
        }
    }

    internal static void DetachPinned(string deployment, string linkPin)
    {
        var path = DeploymentPaths.Pin(deployment, linkPin);
        using (var link = XdpLink.OpenPinned(path)) link?.Detach();
        File.Delete(path);
    }

    /// <summary>One chain on its way into the kernel; owns its fds until the publish ends.</summary>
    private sealed class StagedChain(CompiledChain compiled, BpfMap counters) : IDisposable
    {
        public CompiledChain Compiled { get; } = compiled;
        public BpfMap Counters { get; } = counters;
        public LoadedProgram? Program { get; set; }
        public uint Ifindex { get; set; }
        public XdpLink? Link { get; set; }

        /// <summary>The program a reused link ran before, held so a failed publish can put it back.</summary>
        public FileDescriptor? PreviousProgram { get; set; }
        public string LinkPin { get; set; } = "";
        public string CountersPin { get; set; } = "";

        public ManifestChain ToManifest()
        {
            var chain = Compiled.Chain;
            var info = Link!.Info();
            return new ManifestChain(chain.Name, chain.Hook, chain.Interface, Ifindex, chain.Mode, chain.Policy, LinkPin, CountersPin,
                info.ProgramId, info.LinkId, chain.Rules.Select(r => new ManifestRule(r.Name, r.Match.ToString(), r.Verdict)).ToList());
        }

        public void Dispose()
        {
            Link?.Dispose();
            PreviousProgram?.Dispose();
            Program?.Dispose();
            Counters.Dispose();
        }
    }
}
