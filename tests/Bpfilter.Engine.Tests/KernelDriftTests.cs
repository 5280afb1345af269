using Bpfilter.Engine.Deployment;
using Bpfilter.Engine.Rules;
using Xunit;

namespace Bpfilter.Engine.Tests;

/// <summary>Drift: a published ruleset against itself and against edited versions of it.</summary>
[Collection("kernel")]
public sealed class KernelDriftTests : IDisposable
{
    private readonly Sandbox _sandbox = new();
    private readonly string _name;

    public KernelDriftTests() => _name = $"bpft-d{_sandbox.Id}";

    public void Dispose()
    {
        try
        {
            if (Deployments.Names().Contains(_name)) Deployments.Unpublish(_name);
        }
        finally
        {
            _sandbox.Dispose();
        }
    }

    private static readonly Rule Telnet = new("no-telnet", Matches.Simple(protocol: IpProtocol.Tcp, destinationPort: 23), Verdict.Drop);
    private static readonly Rule Dns = new("allow-dns", Matches.Simple(protocol: IpProtocol.Udp, destinationPort: 53), Verdict.Accept);

    private Ruleset Version(string chain = "INPUT", Verdict? policy = null, Hook hook = Hook.NfInput, int? priority = null, params Rule[] rules) =>
        new(_name, [new Chain(chain, hook, hook == Hook.NfInput ? null : _sandbox.ReceiverInterface, policy ?? Verdict.Accept, rules, priority: priority)]);

    private IReadOnlyList<RulesetDifference> Differences(Ruleset desired) => Drift.Compare(desired).Where(d => d.Kind != DifferenceKind.Same).ToList();

    [Fact]
    public void A_ruleset_and_its_deployment_agree_even_after_a_republish_moved_it_to_the_spare_priority()
    {
        var ruleset = Version(priority: 5, rules: [Telnet, Dns]);
        Publisher.Publish(ruleset, new PublishOptions(_sandbox.Receiver));
        Publisher.Publish(ruleset, new PublishOptions(_sandbox.Receiver)); // now at priority 4
        Assert.Empty(Differences(ruleset));
        Assert.Equal([DifferenceKind.Same, DifferenceKind.Same], Drift.Compare(ruleset).Select(d => d.Kind));
    }

    [Fact]
    public void Each_kind_of_edit_is_named_with_both_sides()
    {
        Publisher.Publish(Version(rules: [Telnet, Dns]), new PublishOptions(_sandbox.Receiver));

        var changed = Assert.Single(Differences(Version(rules: [Telnet, new Rule("allow-dns", Dns.Match, Verdict.Drop)])));
        Assert.Equal((DifferenceKind.Changed, 2, "allow-dns: protocol udp destination-port 53 -> accept", "allow-dns: protocol udp destination-port 53 -> drop"),
            (changed.Kind, changed.Position!.Value, changed.Deployed, changed.Desired));

        var added = Assert.Single(Differences(Version(rules: [Telnet, Dns, new Rule("extra", Match.Any, Verdict.Drop)])));
        Assert.Equal((DifferenceKind.Added, 3, (string?)null), (added.Kind, added.Position!.Value, added.Deployed));

        var removed = Assert.Single(Differences(Version(rules: [Telnet])));
        Assert.Equal((DifferenceKind.Removed, "allow-dns"), (removed.Kind, removed.Rule));

        Assert.Equal(DifferenceKind.PolicyChanged, Assert.Single(Differences(Version(policy: Verdict.Drop, rules: [Telnet, Dns]))).Kind);
        Assert.Equal(DifferenceKind.AttachPointChanged, Assert.Single(Differences(Version(hook: Hook.TcIngress, rules: [Telnet, Dns]))).Kind);
        Assert.Equal([DifferenceKind.ChainAdded, DifferenceKind.ChainRemoved], Differences(Version(chain: "OTHER", rules: [Telnet, Dns])).Select(d => d.Kind));
    }

    [Fact]
    public void A_tcx_order_change_is_an_attach_point_change_and_a_namespace_path_is_the_namespace_it_names()
    {
        Ruleset Tc(TcxOrder order, string? networkNamespace) =>
            new(_name, [new Chain("INPUT", Hook.TcIngress, _sandbox.ReceiverInterface, Verdict.Accept, [Telnet], order: order, networkNamespace: networkNamespace)]);
        Publisher.Publish(Tc(TcxOrder.Last, _sandbox.Receiver), new PublishOptions());

        Assert.Empty(Differences(Tc(TcxOrder.Last, $"/run/netns/{_sandbox.Receiver}")));
        var moved = Assert.Single(Differences(Tc(TcxOrder.First, _sandbox.Receiver)));
        Assert.Equal((DifferenceKind.AttachPointChanged, $"tc-ingress on {_sandbox.ReceiverInterface} (order last) in {_sandbox.Receiver}",
            $"tc-ingress on {_sandbox.ReceiverInterface} (order first) in {_sandbox.Receiver}"), (moved.Kind, moved.Deployed, moved.Desired));
        Assert.Equal(DifferenceKind.AttachPointChanged, Assert.Single(Differences(Tc(TcxOrder.Last, _sandbox.Sender))).Kind);
    }

    [Fact]
    public void Nothing_deployed_is_not_found()
    {
        var error = Assert.Throws<BpfilterException>(() => Drift.Compare(Version(rules: [Telnet])));
        Assert.Equal("DeploymentNotFound", error.ErrorId);
    }
}
