using System.Diagnostics;
using Bpfilter.Engine.Deployment;
using Bpfilter.Engine.Kernel;
using Bpfilter.Engine.Rules;
using Xunit;
using Xunit.Abstractions;

namespace Bpfilter.Engine.Tests;

/// <summary>
/// 1,000 publish / republish / unpublish cycles in one process leave no program, map, link, fd, pin or namespace
/// behind, and memory stays within a stated bound. Counts are taken after a full GC, so an fd only a finalizer
/// would close is not hidden: the counts before the GC are checked too. Programs, maps and links are counted by the
/// soak chain's own names, so other processes loading programs meanwhile change nothing.
/// </summary>
[Collection("kernel")]
public sealed class KernelSoakTests(ITestOutputHelper output)
{
    private const int Cycles = 1_000, WarmUp = 50;
    private const long RssBoundBytes = 48L << 20;

    [Fact]
    public void A_thousand_cycles_leave_nothing_behind()
    {
        using var sandbox = new Sandbox();
        var name = $"bpft-soak{sandbox.Id}";
        var chain = $"soak{sandbox.Id}";
        Hook[] hooks = [Hook.Xdp, Hook.TcIngress, Hook.NfInput];
        Ruleset Version(int cycle, int v) => new(name, [new Chain(chain, hooks[cycle % 3], hooks[cycle % 3] == Hook.NfInput ? null : sandbox.ReceiverInterface,
            Verdict.Accept, [new Rule($"r{v}", Matches.Simple(protocol: IpProtocol.Udp, destinationPort: (ushort)(1000 + v)), Verdict.Drop)])]);
        void Cycle(int i)
        {
            Publisher.Publish(Version(i, 0), new PublishOptions(sandbox.Receiver));
            Publisher.Publish(Version(i, 1), new PublishOptions(sandbox.Receiver));
            Deployments.Unpublish(name);
        }

        for (int i = 0; i < WarmUp; i++) Cycle(i);
        var before = Settled(chain);
        long rssBefore = Process.GetCurrentProcess().WorkingSet64;
        var clock = Stopwatch.StartNew();
        for (int i = WarmUp; i < Cycles; i++) Cycle(i);
        var unsettled = Ours(chain);
        var after = Settled(chain);
        long rssAfter = Process.GetCurrentProcess().WorkingSet64;

        output.WriteLine($"{Cycles - WarmUp} cycles (after {WarmUp} warm-up) in {clock.Elapsed.TotalSeconds:0.0} s");
        output.WriteLine($"before: {before}; after: {after}; after, before GC: {unsettled}");
        output.WriteLine($"RSS {rssBefore >> 20} MiB -> {rssAfter >> 20} MiB (bound: +{RssBoundBytes >> 20} MiB)");
        Assert.Equal(before, after);
        Assert.Equal(before.FileDescriptors, unsettled.FileDescriptors);
        Assert.False(Directory.Exists(DeploymentPaths.Directory(name)));
        Assert.True(rssAfter - rssBefore < RssBoundBytes, $"RSS grew by {(rssAfter - rssBefore) >> 20} MiB");
    }

    /// <summary>After a full GC, and once the kernel's deferred frees (maps go through a work queue) have run.</summary>
    private static KernelObjectCounts Settled(string chain)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        var counts = Ours(chain);
        for (int i = 0; i < 50; i++)
        {
            Thread.Sleep(100);
            var again = Ours(chain);
            if (again == counts) break;
            counts = again;
        }
        return counts;
    }

    /// <summary>The soak chain's programs (bf_…), counter maps (c_…) and the links that run its programs; this process's fds.</summary>
    private static KernelObjectCounts Ours(string chain)
    {
        var programs = KernelObjects.Programs().Where(p => p.Name == $"bf_{chain}"[..Math.Min(15, chain.Length + 3)]).Select(p => p.Id).ToHashSet();
        int maps = KernelObjects.Maps().Count(m => m.Name == $"c_{chain}"[..Math.Min(15, chain.Length + 2)]);
        int links = KernelObjects.Links().Count(l => programs.Contains(l.ProgramId));
        return new KernelObjectCounts(programs.Count, maps, links, KernelObjects.OpenFileDescriptorCount());
    }
}
