using Bpfilter.Engine.Editing;
using Bpfilter.Engine.Rules;
using Xunit;

namespace Bpfilter.Engine.Tests;

public sealed class RulesetEditorTests
{
    private static Rule Named(string name, Verdict? verdict = null) => new(name, Match.Any, verdict ?? Verdict.Accept);

    private static Chain Input(params Rule[] rules) => new("INPUT", Hook.NfInput, null, Verdict.Drop, rules);

    private static Ruleset Web() => new("web",
        [Input(Named("a"), Named("b", Verdict.Jump("WEB")), Named("c"))],
        "/etc/web.yaml",
        [new UserChain("WEB", [Named("w1", Verdict.Return)])],
        [new NamedSet("blocklist", SetType.Ipv4Network, [SetElement.Parse(SetType.Ipv4Network, "203.0.113.0/24")])]);

    private static string[] RuleNames(IEnumerable<Rule> rules) => rules.Select(r => r.Name ?? "?").ToArray();

    // --- positions -------------------------------------------------------------------------------------

    [Theory]
    [InlineData(null, new[] { "a", "b", "c", "x", "y" })]
    [InlineData(1, new[] { "x", "y", "a", "b", "c" })]
    [InlineData(2, new[] { "a", "x", "y", "b", "c" })]
    [InlineData(4, new[] { "a", "b", "c", "x", "y" })]
    public void Add_inserts_so_the_first_new_rule_is_at_the_position(int? position, string[] expected)
    {
        var edited = RulesetEditor.AddRules(Web(), "INPUT", [Named("x"), Named("y")], position);
        Assert.Equal(expected, RuleNames(edited.Chains[0].Rules));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    [InlineData(-1)]
    public void Add_refuses_a_position_outside_the_chain(int position)
    {
        var e = Assert.Throws<BpfilterException>(() => RulesetEditor.AddRules(Web(), "INPUT", [Named("x")], position));
        Assert.Equal("RulePositionOutOfRange", e.ErrorId);
        Assert.Equal($"chain 'INPUT' has 3 rules: a new rule goes at a position from 1 to 4, not {position}", e.Message);
    }

    [Fact]
    public void Remove_by_positions_counts_them_in_the_chain_before_the_edit()
    {
        var edited = RulesetEditor.RemoveRules(Web(), "INPUT", RuleSelection.AtPositions([1, 3]));
        Assert.Equal(["b"], RuleNames(edited.Chains[0].Rules));
    }

    [Fact]
    public void Remove_by_name_and_errors_for_what_is_not_there()
    {
        Assert.Equal(["a", "c"], RuleNames(RulesetEditor.RemoveRules(Web(), "INPUT", RuleSelection.Named(["b"])).Chains[0].Rules));

        var missing = Assert.Throws<BpfilterException>(() => RulesetEditor.RemoveRules(Web(), "INPUT", RuleSelection.Named(["nope"])));
        Assert.Equal(("RuleNotFound", FailureCategory.ObjectNotFound), (missing.ErrorId, missing.Category));
        Assert.Equal("chain 'INPUT' has no rule named 'nope': its rules are a, b, c", missing.Message);

        var past = Assert.Throws<BpfilterException>(() => RulesetEditor.RemoveRules(Web(), "WEB", RuleSelection.AtPositions([2])));
        Assert.Equal("chain 'WEB' has 1 rule: a position is 1 to 1, not 2", past.Message);
    }

    // --- what stays the same ----------------------------------------------------------------------------

    [Fact]
    public void Edits_return_a_new_ruleset_and_leave_the_input_and_the_rest_as_they_were()
    {
        var original = Web();
        var edited = RulesetEditor.AddRules(original, "WEB", [Named("w0")], 1);
        Assert.Equal(Web(), original);
        Assert.Equal(["w0", "w1"], RuleNames(edited.UserChains[0].Rules));
        Assert.Equal(original.Chains, edited.Chains);
        Assert.Equal(original.Sets, edited.Sets);
        Assert.Equal((original.Name, original.SourcePath), (edited.Name, edited.SourcePath));
    }

    [Fact]
    public void A_chain_keeps_every_attach_key_through_an_edit()
    {
        var tc = new Chain("EGRESS", Hook.TcEgress, "veth0", Verdict.Accept, [Named("a")], order: TcxOrder.First, networkNamespace: "bpft-ns");
        var nf = new Chain("IN", Hook.NfInput, null, Verdict.Drop, [], priority: -150);
        var xdp = new Chain("X", Hook.Xdp, "eth0", Verdict.Accept, [], XdpMode.Generic);
        Assert.Equal(tc, RulesetEditor.RemoveRules(RulesetEditor.AddRules(tc, [Named("b")], null), RuleSelection.Named(["b"])));
        Assert.Equal(-150, RulesetEditor.AddRules(nf, [Named("a")], 1).Priority);
        Assert.Equal(XdpMode.Generic, RulesetEditor.WithSettings(xdp, Verdict.Drop, null).Mode);
    }

    // --- the model checks the result -------------------------------------------------------------------

    [Fact]
    public void An_edit_the_model_refuses_is_a_validation_error()
    {
        var duplicate = Assert.Throws<RulesetValidationException>(() => RulesetEditor.AddRules(Web(), "INPUT", [Named("a")], null));
        Assert.Equal("chain 'INPUT' has two rules named 'a'", duplicate.Message);

        var dangling = Assert.Throws<RulesetValidationException>(() => RulesetEditor.AddRules(Web(), "INPUT", [new Rule(null, Match.Any, Verdict.Goto("NOPE"))], null));
        Assert.Equal("chain 'INPUT' rule 4: there is no chain 'NOPE' to goto to", dangling.Message);

        var loop = Assert.Throws<RulesetValidationException>(() => RulesetEditor.AddRules(Web(), "WEB", [new Rule(null, Match.Any, Verdict.Jump("WEB"))], null));
        Assert.Equal("the chains jump in a loop: WEB -> WEB", loop.Message);

        var noSet = new Rule(null, Match.Any with { Source = AddressMatch.InSet("other") }, Verdict.Drop);
        Assert.Contains("there is no set 'other'", Assert.Throws<RulesetValidationException>(() => RulesetEditor.AddRules(Web(), "INPUT", [noSet], null)).Message);
    }

    // --- choosing the chain ----------------------------------------------------------------------------

    [Fact]
    public void Without_a_chain_name_the_only_chain_is_edited_and_otherwise_it_must_be_named()
    {
        var single = new Ruleset("one", [Input(Named("a"))]);
        Assert.Equal(["a", "x"], RuleNames(RulesetEditor.AddRules(single, null, [Named("x")], null).Chains[0].Rules));

        var e = Assert.Throws<BpfilterException>(() => RulesetEditor.AddRules(Web(), null, [Named("x")], null));
        Assert.Equal(("ChainNotNamed", FailureCategory.InvalidArgument), (e.ErrorId, e.Category));
        Assert.Equal("ruleset 'web' has more than one chain (INPUT, WEB): name the chain to edit", e.Message);

        var missing = Assert.Throws<BpfilterException>(() => RulesetEditor.AddRules(Web(), "OUTPUT", [Named("x")], null));
        Assert.Equal(("ChainNotFound", FailureCategory.ObjectNotFound), (missing.ErrorId, missing.Category));
        Assert.Equal("ruleset 'web' has no chain 'OUTPUT': its chains are INPUT, WEB", missing.Message);
    }

    [Fact]
    public void Set_chain_changes_the_policy_or_interface_of_a_hooked_chain_only()
    {
        var edited = RulesetEditor.SetChain(Web(), null, Verdict.Accept, null);
        Assert.Equal(Verdict.Accept, edited.Chains[0].Policy);
        Assert.Equal(Web().Chains[0].Rules, edited.Chains[0].Rules);

        var user = Assert.Throws<RulesetValidationException>(() => RulesetEditor.SetChain(Web(), "WEB", Verdict.Accept, null));
        Assert.StartsWith("chain 'WEB' has no hook, so it has no policy or interface", user.Message);

        var interfaceAtNetfilter = Assert.Throws<RulesetValidationException>(() => RulesetEditor.SetChain(Web(), "INPUT", null, "eth0"));
        Assert.Equal("chain 'INPUT': nf-input sees the whole network namespace; it takes no interface", interfaceAtNetfilter.Message);

        var xdp = new Chain("X", Hook.Xdp, "eth0", Verdict.Accept, []);
        Assert.Equal("eth1", RulesetEditor.WithSettings(xdp, null, "eth1").Interface);
    }
}
