using Bpfilter.Engine.Deployment;
using Bpfilter.Engine.Rules;
using Xunit;

namespace Bpfilter.Engine.Tests;

/// <summary>Every hook with real traffic: a chain that drops UDP to 9999 and lets 8888 through, in namespaces of the test's own.</summary>
[Collection("kernel")]
public sealed class KernelHookTests : IDisposable
{
    private readonly string _deployment = $"bpft-h{Guid.NewGuid().ToString("N")[..6]}";

    public void Dispose()
    {
        if (Deployments.Names().Contains(_deployment)) Deployments.Unpublish(_deployment);
    }

    private static Rule[] DropUdp9999 => [new("drop-9999", Matches.Simple(protocol: IpProtocol.Udp, destinationPort: 9999), Verdict.Drop)];

    private DeploymentInfo Publish(Chain chain, string? netns) => Publisher.Publish(new Ruleset(_deployment, [chain]), new PublishOptions(netns));

    private ulong DroppedCount() => Deployments.Counters(_deployment).Single(c => c.Rule == "drop-9999").Packets;

    [Theory]
    [InlineData(Hook.TcIngress)]
    [InlineData(Hook.NfPrerouting)]
    [InlineData(Hook.NfInput)]
    public void Receiver_side_hooks_drop_and_count(Hook hook)
    {
        using var sandbox = new Sandbox();
        using var dropped = sandbox.BindUdp(9999);
        using var passed = sandbox.BindUdp(8888);
        var chain = new Chain("INPUT", hook, hook == Hook.TcIngress ? sandbox.ReceiverInterface : null, Verdict.Accept, DropUdp9999);
        var deployed = Publish(chain, sandbox.Receiver);
        Assert.True(deployed.Chains.Single().Attached);

        sandbox.SendUdp(9999, 6);
        sandbox.SendUdp(8888, 4);

        Assert.Equal((0, 4), (Sandbox.Drain(dropped), Sandbox.Drain(passed)));
        Assert.Equal(6UL, DroppedCount());
    }

    [Theory]
    [InlineData(Hook.TcEgress)]
    [InlineData(Hook.NfOutput)]
    [InlineData(Hook.NfPostrouting)]
    public void Sender_side_hooks_drop_and_count(Hook hook)
    {
        using var sandbox = new Sandbox();
        using var dropped = sandbox.BindUdp(9999);
        using var passed = sandbox.BindUdp(8888);
        var chain = new Chain("OUTPUT", hook, hook == Hook.TcEgress ? sandbox.SenderInterface : null, Verdict.Accept, DropUdp9999);
        Publish(chain, sandbox.Sender);

        int refused = sandbox.SendUdp(9999, 6);
        sandbox.SendUdp(8888, 4);

        Assert.Equal((0, 4), (Sandbox.Drain(dropped), Sandbox.Drain(passed)));
        Assert.Equal(6UL, DroppedCount());
        if (hook == Hook.NfOutput) Assert.Equal(6, refused); // a LOCAL_OUT drop fails the sender's sendto with EPERM
    }

    [Fact]
    public void Forward_hook_drops_routed_traffic_only()
    {
        using var net = new RoutedSandbox();
        using var dropped = Sandbox.UdpSocketIn(net.Server, "10.203.2.1", 9999);
        using var passed = Sandbox.UdpSocketIn(net.Server, "10.203.2.1", 8888);
        using var toRouter = Sandbox.UdpSocketIn(net.Router, "10.203.1.2", 9999);
        Publish(new Chain("FORWARD", Hook.NfForward, null, Verdict.Accept, DropUdp9999), net.Router);

        using var client = Sandbox.UdpSocketIn(net.Client, "10.203.1.1");
        SendFrom(client, "10.203.2.1", 9999, 5);
        SendFrom(client, "10.203.2.1", 8888, 3);
        SendFrom(client, "10.203.1.2", 9999, 2); // to the router itself: INPUT, not FORWARD

        Assert.Equal((0, 3, 2), (Sandbox.Drain(dropped), Sandbox.Drain(passed), Sandbox.Drain(toRouter)));
        Assert.Equal(5UL, DroppedCount());
    }

    [Theory]
    [InlineData(Hook.CgroupIngress)]
    [InlineData(Hook.CgroupEgress)]
    public void Cgroup_hooks_filter_only_sockets_of_the_cgroup(Hook hook)
    {
        using var sandbox = new Sandbox();
        using var cgroup = new TestCgroup();
        bool ingress = hook == Hook.CgroupIngress;
        // The socket the chain should see is made inside the cgroup; the other one outside it.
        using var inside = cgroup.CreateInside(() => ingress ? sandbox.BindUdp(9999) : Sandbox.UdpSocketIn(sandbox.Sender, Sandbox.SenderAddress));
        using var outsideReceiver = sandbox.BindUdp(8888);
        using var insideReceiver = ingress ? null : sandbox.BindUdp(9999);
        Publish(new Chain("SOCKETS", hook, null, Verdict.Accept, DropUdp9999, cgroup: cgroup.Relative), null);

        if (ingress)
        {
            sandbox.SendUdp(9999, 5);
            Assert.Equal(0, Sandbox.Drain(inside));
        }
        else
        {
            Assert.Equal(5, sandbox.SendUdp(9999, 5, socket: inside)); // an egress drop fails sendto with EPERM
            Assert.Equal(0, Sandbox.Drain(insideReceiver!));
        }
        sandbox.SendUdp(8888, 3);
        Assert.Equal(3, Sandbox.Drain(outsideReceiver));
        Assert.Equal(5UL, DroppedCount());
    }

    [Theory]
    [InlineData(TcxOrder.First, 5UL)]
    [InlineData(TcxOrder.Last, 0UL)]
    public void A_tc_chain_placed_first_sees_packets_that_a_later_program_drops(TcxOrder order, ulong seenByWatcher)
    {
        using var sandbox = new Sandbox();
        var watcher = $"bpft-w{sandbox.Id}";
        try
        {
            Publish(new Chain("INPUT", Hook.TcIngress, sandbox.ReceiverInterface, Verdict.Accept, DropUdp9999), sandbox.Receiver);
            var count = new Rule("see-9999", Matches.Simple(protocol: IpProtocol.Udp, destinationPort: 9999), Verdict.Accept);
            Publisher.Publish(new Ruleset(watcher, [new Chain("WATCH", Hook.TcIngress, sandbox.ReceiverInterface, Verdict.Accept, [count], order: order)]),
                new PublishOptions(sandbox.Receiver));
            sandbox.SendUdp(9999, 5);
            // Accept is TCX_NEXT, so a watcher placed first counts and passes on; placed last, it never sees what the other dropped.
            Assert.Equal(seenByWatcher, Deployments.Counters(watcher).Single(c => c.Rule == "see-9999").Packets);
            Assert.Equal(5UL, DroppedCount());
        }
        finally
        {
            if (Deployments.Names().Contains(watcher)) Deployments.Unpublish(watcher);
        }
    }

    [Fact]
    public void A_namespace_can_be_given_by_path()
    {
        using var sandbox = new Sandbox();
        using var dropped = sandbox.BindUdp(9999);
        var deployed = Publish(new Chain("INPUT", Hook.NfInput, null, Verdict.Accept, DropUdp9999), $"/run/netns/{sandbox.Receiver}");
        Assert.Equal($"/run/netns/{sandbox.Receiver}", deployed.Chains.Single().NetworkNamespace);
        sandbox.SendUdp(9999, 2);
        Assert.Equal(0, Sandbox.Drain(dropped));
        Assert.Equal(2UL, DroppedCount());
    }

    [Fact]
    public void Republishing_a_netfilter_chain_moves_to_the_spare_priority_and_back()
    {
        using var sandbox = new Sandbox();
        var chain = new Chain("INPUT", Hook.NfInput, null, Verdict.Accept, DropUdp9999, priority: 10);
        var priorities = Enumerable.Range(0, 3).Select(_ => Publish(chain, sandbox.Receiver).Chains.Single().Priority).ToList();
        Assert.Equal([10, 9, 10], priorities);
        Assert.Equal(["INPUT-link-3", "INPUT-link6-3"],
            Directory.EnumerateFiles(DeploymentPaths.Directory(_deployment)).Select(Path.GetFileName).Where(f => f!.Contains("-link")).Order());
        using var dropped = sandbox.BindUdp(9999);
        sandbox.SendUdp(9999, 3);
        Assert.Equal(0, Sandbox.Drain(dropped));
        Assert.Equal(3UL, DroppedCount());
    }

    [Fact]
    public void Counters_of_unchanged_rules_carry_over_a_republish()
    {
        using var sandbox = new Sandbox();
        var chain = new Chain("INPUT", Hook.TcIngress, sandbox.ReceiverInterface, Verdict.Accept, DropUdp9999);
        Publish(chain, sandbox.Receiver);
        sandbox.SendUdp(9999, 4);
        var extra = new Rule("drop-7777", Matches.Simple(protocol: IpProtocol.Udp, destinationPort: 7777), Verdict.Drop);
        Publish(chain, sandbox.Receiver); // the same rules again
        var changed = new Chain("INPUT", Hook.TcIngress, sandbox.ReceiverInterface, Verdict.Accept, [extra, .. DropUdp9999]);
        Publish(changed, sandbox.Receiver);
        sandbox.SendUdp(9999, 2);
        sandbox.SendUdp(7777, 1);
        var counters = Deployments.Counters(_deployment);
        Assert.Equal(6UL, counters.Single(c => c.Rule == "drop-9999").Packets);
        Assert.Equal(1UL, counters.Single(c => c.Rule == "drop-7777").Packets);
    }

    [Fact]
    public void Offload_on_a_device_without_it_says_so_and_deploys_nothing()
    {
        using var sandbox = new Sandbox();
        var chain = new Chain("INPUT", Hook.Xdp, sandbox.ReceiverInterface, Verdict.Accept, DropUdp9999, XdpMode.Offload);
        var error = Assert.Throws<Kernel.KernelException>(() => Publish(chain, sandbox.Receiver));
        Assert.Equal("OffloadUnsupported", error.ErrorId);
        Assert.Contains("cannot run offloaded XDP programs", error.Message);
        Assert.False(Directory.Exists(DeploymentPaths.Directory(_deployment)));
    }

    [Fact]
    public void A_stale_deployment_shows_why_and_unpublishes_cleanly()
    {
        var sandbox = new Sandbox();
        Publish(new Chain("INPUT", Hook.Xdp, sandbox.ReceiverInterface, Verdict.Accept, DropUdp9999), sandbox.Receiver);
        sandbox.Dispose();
        Assert.Equal(ChainState.NamespaceGone, Deployments.Get(_deployment).Chains.Single().State);
        Deployments.Unpublish(_deployment);
        Assert.False(Directory.Exists(DeploymentPaths.Directory(_deployment)));
    }

    private static void SendFrom(System.Net.Sockets.Socket socket, string to, int port, int count)
    {
        for (int i = 0; i < count; i++) socket.SendTo(new byte[18], new System.Net.IPEndPoint(System.Net.IPAddress.Parse(to), port));
    }
}
