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

    private static Rule DropUdpPort(string name, ushort port) => new(name, new Match(protocol: IpProtocol.Udp, destinationPort: port), Verdict.Drop);

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
}
