using Bpfilter.Engine.Deployment;
using Bpfilter.Engine.Rules;
using Xunit;

namespace Bpfilter.Engine.Tests;

/// <summary>Publishes real programs onto a veth of a sandbox, sends real packets, and reads the pinned counters.</summary>
[Collection("kernel")]
public sealed class KernelPublishTests : IDisposable
{
    private readonly Sandbox _sandbox = new();
    private readonly string _deployment;

    public KernelPublishTests() => _deployment = $"bpft-{_sandbox.Id}";

    public void Dispose()
    {
        if (Deployments.Names().Contains(_deployment)) Deployments.Unpublish(_deployment);
        _sandbox.Dispose();
    }

    private Ruleset Rules(Verdict policy, XdpMode mode, params Rule[] rules) =>
        new(_deployment, [new Chain("INPUT", Hook.Xdp, _sandbox.ReceiverInterface, policy, rules, mode)]);

    private static Rule DropUdpPort(string name, ushort port) => new(name, Matches.Simple(protocol: IpProtocol.Udp, destinationPort: port), Verdict.Drop);

    [Theory]
    [InlineData(XdpMode.Native)]
    [InlineData(XdpMode.Generic)]
    public void Dropped_port_never_arrives_and_both_rule_and_policy_count(XdpMode mode)
    {
        using var dropped = _sandbox.BindUdp(9999);
        using var passed = _sandbox.BindUdp(8888);
        Publisher.Publish(Rules(Verdict.Accept, mode, DropUdpPort("drop-9999", 9999)), new PublishOptions(_sandbox.Receiver));

        _sandbox.SendUdp(9999, 10);
        _sandbox.SendUdp(8888, 7);

        Assert.Equal(0, Sandbox.Drain(dropped));
        Assert.Equal(7, Sandbox.Drain(passed));
        var counters = Deployments.Counters(_deployment);
        var rule = Assert.Single(counters, c => c.Kind == CounterKind.Rule);
        Assert.Equal(("drop-9999", 10UL, 10UL * 60), (rule.Rule, rule.Packets, rule.Bytes)); // 14 + 20 + 8 + 18 bytes a frame
        Assert.True(counters.Single(c => c.Kind == CounterKind.Policy).Packets >= 7);
    }

    [Fact]
    public void A_failed_republish_leaves_the_previous_deployment_attached_and_counting()
    {
        using var dropped = _sandbox.BindUdp(9999);
        Publisher.Publish(Rules(Verdict.Accept, XdpMode.Native, DropUdpPort("drop-9999", 9999)), new PublishOptions(_sandbox.Receiver));
        var before = Deployments.Get(_deployment);

        var broken = new Ruleset(_deployment, [new Chain("INPUT", Hook.Xdp, "bpftnone0", Verdict.Accept, [DropUdpPort("drop-8888", 8888)])]);
        var error = Assert.Throws<BpfilterException>(() => Publisher.Publish(broken, new PublishOptions(_sandbox.Receiver)));
        Assert.Equal("InterfaceNotFound", error.ErrorId);

        Assert.Equal(before, Deployments.Get(_deployment) with { Chains = before.Chains });
        Assert.Equal(before.Chains.Single().ProgramId, Deployments.Get(_deployment).Chains.Single().ProgramId);
        _sandbox.SendUdp(9999, 4);
        Assert.Equal(0, Sandbox.Drain(dropped));
        Assert.Equal(4UL, Deployments.Counters(_deployment).Single(c => c.Rule == "drop-9999").Packets);
    }

    [Fact]
    public void Republishing_swaps_the_program_on_the_same_link_and_unpublishing_lets_traffic_through()
    {
        using var port9999 = _sandbox.BindUdp(9999);
        using var port8888 = _sandbox.BindUdp(8888);
        var first = Publisher.Publish(Rules(Verdict.Accept, XdpMode.Native, DropUdpPort("drop-9999", 9999)), new PublishOptions(_sandbox.Receiver));
        var second = Publisher.Publish(Rules(Verdict.Accept, XdpMode.Native, DropUdpPort("drop-8888", 8888)), new PublishOptions(_sandbox.Receiver));
        Assert.Equal(first.Chains[0].LinkIds, second.Chains[0].LinkIds);
        Assert.NotEqual(first.Chains[0].ProgramId, second.Chains[0].ProgramId);
        Assert.Equal(2, second.Generation);
        Assert.Equal(["INPUT-counters-2", "INPUT-link-1", "INPUT-prog-2", "manifest"],
            Directory.EnumerateFiles(DeploymentPaths.Directory(_deployment)).Select(Path.GetFileName).Order());

        _sandbox.SendUdp(9999, 3);
        _sandbox.SendUdp(8888, 3);
        Assert.Equal((3, 0), (Sandbox.Drain(port9999), Sandbox.Drain(port8888)));

        Deployments.Unpublish(_deployment);
        Assert.False(Directory.Exists(DeploymentPaths.Directory(_deployment)));
        _sandbox.SendUdp(8888, 3);
        Assert.Equal(3, Sandbox.Drain(port8888));
    }

    [Fact]
    public void Policy_drop_drops_what_no_rule_accepts_but_lets_ARP_through()
    {
        using var accepted = _sandbox.BindUdp(53);
        using var other = _sandbox.BindUdp(5353);
        var allowDns = new Rule("allow-dns", Matches.Simple(protocol: IpProtocol.Udp, destinationPort: 53), Verdict.Accept);
        Publisher.Publish(Rules(Verdict.Drop, XdpMode.Native, allowDns), new PublishOptions(_sandbox.Receiver));
        _sandbox.SendUdp(53, 2);
        _sandbox.SendUdp(5353, 2);
        Assert.Equal((2, 0), (Sandbox.Drain(accepted), Sandbox.Drain(other)));
        var counters = Deployments.Counters(_deployment);
        // The two datagrams to 5353, and any IPv6 neighbour discovery the veth sent meanwhile: the chain judges IPv6 too.
        Assert.True(counters.Single(c => c.Kind == CounterKind.Policy).Packets >= 2);
        Assert.True(counters.Single(c => c.Kind == CounterKind.NotIp).Packets >= 1); // the ARP request that let the datagrams out
    }
}
