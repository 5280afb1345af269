using Bpfilter.Engine.Deployment;
using Bpfilter.Engine.Rules;
using Xunit;

namespace Bpfilter.Engine.Tests;

/// <summary>
/// Named sets deployed as maps, with real datagrams across a sandbox veth: members added and removed take effect at
/// the next packet, without a new program (the program id stays), and the manifest follows the map.
/// </summary>
[Collection("kernel")]
public sealed class KernelSetTests : IDisposable
{
    private readonly Sandbox _sandbox = new();
    private readonly string _deployment;

    public KernelSetTests() => _deployment = $"bpft-{_sandbox.Id}";

    public void Dispose()
    {
        if (Deployments.Names().Contains(_deployment)) Deployments.Unpublish(_deployment);
        _sandbox.Dispose();
    }

    [Theory]
    [InlineData(Hook.Xdp)]
    [InlineData(Hook.NfInput)]
    public void Set_members_change_in_place_and_the_program_stays(Hook hook)
    {
        const string other = "10.201.0.77";
        _sandbox.AddSenderAddress(other);
        var blocked = new NamedSet("blocked", SetType.Ipv4Address, [SetElement.Parse(SetType.Ipv4Address, "10.201.0.99")]);
        var ports = new NamedSet("ports", SetType.Port, [SetElement.Parse(SetType.Port, "7000-7010")]);
        var chain = new Chain("INPUT", hook, hook == Hook.Xdp ? _sandbox.ReceiverInterface : null, Verdict.Accept,
        [
            new Rule("blocked", new Match { Protocol = new(IpProtocol.Udp), Source = AddressMatch.InSet("blocked") }, Verdict.Drop),
            new Rule("ports", new Match { Protocol = new(IpProtocol.Udp), DestinationPort = PortMatch.InSet("ports") }, Verdict.Drop),
        ]);
        var ruleset = new Ruleset(_deployment, [chain], sets: [blocked, ports]);
        Publisher.Publish(ruleset, new PublishOptions(_sandbox.Receiver));
        var programId = Deployments.Programs(_deployment).Single().ProgramId;
        var kept = Deployments.PublishedRuleset(_deployment);
        Assert.Equal((ruleset.Chains, ruleset.Sets), (kept.Chains, kept.Sets)); // the manifest keeps what was published
        using var socket = _sandbox.BindUdp(9000);
        using var ranged = _sandbox.BindUdp(7005);

        _sandbox.SendUdp(9000, 3, from: other);
        _sandbox.SendUdp(7005, 2);
        Assert.Equal((3, 0), (Sandbox.Drain(socket), Sandbox.Drain(ranged)));

        var view = DeploymentSets.Add(_deployment, "blocked", [other]);
        Assert.Equal(["10.201.0.99", other], view.Elements.Select(e => e.ToString()));
        _sandbox.SendUdp(9000, 4, from: other);
        Assert.Equal(0, Sandbox.Drain(socket));

        DeploymentSets.Remove(_deployment, "blocked", [other]);
        DeploymentSets.Remove(_deployment, "ports", ["7000-7010"]);
        _sandbox.SendUdp(9000, 2, from: other);
        _sandbox.SendUdp(7005, 2);
        Assert.Equal((2, 2), (Sandbox.Drain(socket), Sandbox.Drain(ranged)));

        Assert.Equal(programId, Deployments.Programs(_deployment).Single().ProgramId);
        var counters = Deployments.Counters(_deployment);
        Assert.Equal(4UL, counters.Single(c => c.Rule == "blocked").Packets);
        Assert.Equal(2UL, counters.Single(c => c.Rule == "ports").Packets);
        var sets = DeploymentSets.Get(_deployment);
        Assert.Equal(["10.201.0.99"], sets.Single(s => s.Name == "blocked").Elements.Select(e => e.ToString()));
        Assert.Empty(sets.Single(s => s.Name == "ports").Elements);
    }

    [Fact]
    public void A_bad_member_changes_nothing()
    {
        var blocked = new NamedSet("blocked", SetType.Ipv4Network, [SetElement.Parse(SetType.Ipv4Network, "10.9.0.0/16")]);
        var chain = new Chain("INPUT", Hook.NfInput, null, Verdict.Accept,
            [new Rule("blocked", new Match { Source = AddressMatch.InSet("blocked") }, Verdict.Drop)]);
        Publisher.Publish(new Ruleset(_deployment, [chain], sets: [blocked]), new PublishOptions(_sandbox.Receiver));

        var wrongFamily = Assert.Throws<RulesetValidationException>(() => DeploymentSets.Add(_deployment, "blocked", ["10.8.0.0/16", "2001:db8::/32"]));
        Assert.Contains("'2001:db8::/32' is not an element of set 'blocked'", wrongFamily.Message);
        var absent = Assert.Throws<BpfilterException>(() => DeploymentSets.Remove(_deployment, "blocked", ["10.7.0.0/16"]));
        Assert.Equal("SetMemberNotFound", absent.ErrorId);
        var noSet = Assert.Throws<BpfilterException>(() => DeploymentSets.Add(_deployment, "nosuch", ["10.7.0.0/16"]));
        Assert.Equal("SetNotFound", noSet.ErrorId);
        Assert.Equal(["10.9.0.0/16"], DeploymentSets.Get(_deployment).Single().Elements.Select(e => e.ToString()));
    }

    [Theory]
    [InlineData(Hook.Xdp)]
    [InlineData(Hook.NfInput)]
    public void Log_verdicts_write_entries_that_Get_BpfLog_reads_once(Hook hook)
    {
        var chain = new Chain("INPUT", hook, hook == Hook.Xdp ? _sandbox.ReceiverInterface : null, Verdict.Accept,
        [
            new Rule("note-udp", new Match { Protocol = new(IpProtocol.Udp), DestinationPort = PortMatch.Single(9100) }, Verdict.Log("UDP-IN: ")),
            new Rule("drop-it", new Match { Protocol = new(IpProtocol.Udp), DestinationPort = PortMatch.Single(9100) }, Verdict.Drop),
        ]);
        Publisher.Publish(new Ruleset(_deployment, [chain]), new PublishOptions(_sandbox.Receiver));
        using var socket = _sandbox.BindUdp(9100);
        _sandbox.SendUdp(9100, 3, payload: 30);
        Assert.Equal(0, Sandbox.Drain(socket));

        var entries = DeploymentLog.Read(_deployment);
        Assert.Equal(3, entries.Count);
        Assert.All(entries, e =>
        {
            Assert.Equal(("INPUT", 1, "note-udp", "UDP-IN: "), (e.Chain, e.Position, e.Rule, e.Prefix));
            Assert.Equal((Sandbox.SenderAddress, Sandbox.ReceiverAddress, (ushort?)9100, 20u + 8 + 30), (e.Source, e.Destination, e.DestinationPort, e.Length));
            Assert.True(Math.Abs((DateTimeOffset.UtcNow - e.Time).TotalSeconds) < 30, $"the entry's time {e.Time} is not now");
        });
        Assert.Empty(DeploymentLog.Read(_deployment)); // read once
        var counters = Deployments.Counters(_deployment);
        Assert.Equal((3UL, 3UL), (counters.Single(c => c.Rule == "note-udp").Packets, counters.Single(c => c.Rule == "drop-it").Packets));
    }

    [Fact]
    public void In_interface_at_nf_input_is_read_through_the_hook_state()
    {
        var chain = new Chain("INPUT", Hook.NfInput, null, Verdict.Accept,
        [
            new Rule("not-from-lo", new Match { Protocol = new(IpProtocol.Udp), DestinationPort = PortMatch.Single(9200), InInterface = new InterfaceMatch("lo") }, Verdict.Accept),
            new Rule("from-veth", new Match { Protocol = new(IpProtocol.Udp), DestinationPort = PortMatch.Single(9200), InInterface = new InterfaceMatch(_sandbox.ReceiverInterface) }, Verdict.Drop),
        ]);
        Publisher.Publish(new Ruleset(_deployment, [chain]), new PublishOptions(_sandbox.Receiver));
        using var socket = _sandbox.BindUdp(9200);
        _sandbox.SendUdp(9200, 3);
        Assert.Equal(0, Sandbox.Drain(socket));
        var counters = Deployments.Counters(_deployment);
        Assert.Equal((0UL, 3UL), (counters.Single(c => c.Rule == "not-from-lo").Packets, counters.Single(c => c.Rule == "from-veth").Packets));
    }

    [Fact]
    public void A_set_that_would_pass_65536_entries_is_SetFull_and_unchanged()
    {
        var ports = new NamedSet("ports", SetType.Port, [SetElement.Parse(SetType.Port, "1-65535")]);
        var chain = new Chain("INPUT", Hook.NfInput, null, Verdict.Accept,
            [new Rule("ports", new Match { Protocol = new(IpProtocol.Udp), DestinationPort = PortMatch.InSet("ports") }, Verdict.Drop)]);
        Publisher.Publish(new Ruleset(_deployment, [chain], sets: [ports]), new PublishOptions(_sandbox.Receiver));
        var e = Assert.Throws<BpfilterException>(() => DeploymentSets.Add(_deployment, "ports", ["1000-2000"]));
        Assert.Equal(("SetFull", FailureCategory.InvalidData), (e.ErrorId, e.Category));
        Assert.Equal(["1-65535"], DeploymentSets.Get(_deployment).Single().Elements.Select(x => x.ToString()));
    }
}
