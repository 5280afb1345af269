using System.Diagnostics;
using Bpfilter.Engine.Formats;
using Bpfilter.Engine.Rules;
using Xunit;
using Xunit.Abstractions;

namespace Bpfilter.Engine.Tests;

public sealed class YamlRulesetWriterTests(ITestOutputHelper output)
{
    private const int Seed = 20260301;
    private const int RoundTrips = 2_000;

    private static Ruleset Read(string yaml) => YamlRulesetReader.Read(new StringReader(yaml), "x.yaml");

    /// <summary>The parts of a ruleset that the text carries: everything but the source path.</summary>
    internal static void AssertSameRuleset(Ruleset expected, Ruleset actual)
    {
        Assert.Equal(expected.Name, actual.Name);
        Assert.Equal(expected.Sets, actual.Sets);
        Assert.Equal(expected.UserChains, actual.UserChains);
        Assert.Equal(expected.Chains, actual.Chains);
    }

    [Fact]
    public void Random_rulesets_of_the_whole_model_read_back_equal_and_write_again_to_the_same_text()
    {
        var generator = new RulesetGenerator(Seed);
        var clock = Stopwatch.StartNew();
        long characters = 0, rules = 0;
        for (int i = 0; i < RoundTrips; i++)
        {
            var original = generator.Ruleset(maxRules: 4);
            var text = YamlRulesetWriter.Write(original);
            Ruleset read;
            try
            {
                read = Read(text);
            }
            catch (RulesetFormatException e)
            {
                throw new Xunit.Sdk.XunitException($"ruleset {i} of seed {Seed} does not read back: {e.Message}\n{text}");
            }
            if (read.Name != original.Name || !read.Sets.Equals(original.Sets) || !read.UserChains.Equals(original.UserChains) || !read.Chains.Equals(original.Chains))
            {
                output.WriteLine(text);
                AssertSameRuleset(original, read);
            }
            Assert.Equal(text, YamlRulesetWriter.Write(read));
            characters += text.Length;
            rules += original.Chains.Sum(c => c.Rules.Count) + original.UserChains.Sum(c => c.Rules.Count);
        }
        output.WriteLine($"{RoundTrips} rulesets ({rules} rules, {characters / 1024} KiB of YAML) written and read back in {clock.Elapsed.TotalSeconds:F2} s");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"{clock.Elapsed}");
    }

    [Fact]
    public void The_generator_covers_every_match_key_verdict_and_set_type()
    {
        var generator = new RulesetGenerator(Seed);
        var rulesets = Enumerable.Range(0, 300).Select(_ => generator.Ruleset()).ToList();
        var rules = rulesets.SelectMany(r => r.Chains.SelectMany(c => c.Rules).Concat(r.UserChains.SelectMany(c => c.Rules))).ToList();
        var text = string.Concat(rulesets.Select(YamlRulesetWriter.Write));
        foreach (var key in YamlRulesetReader.MatchKeys) Assert.Contains($"{key}: ", text);
        foreach (var kind in Enum.GetValues<VerdictKind>()) Assert.Contains(rules, r => r.Verdict.Kind == kind);
        foreach (var with in Enum.GetValues<RejectWith>()) Assert.Contains(rules, r => r.Verdict.With == with);
        foreach (var type in Enum.GetValues<SetType>()) Assert.Contains(rulesets, r => r.Sets.Any(s => s.Type == type));
        foreach (var hook in Enum.GetValues<Hook>()) Assert.Contains(rulesets, r => r.Chains.Any(c => c.Hook == hook));
        Assert.Contains(rules, r => r.Match.Source is { Negated: true, Prefixes.Count: > 1 });
        Assert.Contains(rules, r => r.Match.DestinationPort is { Set: not null, Negated: true });
        Assert.Contains(rules, r => r.Match.TcpFlags is { Negated: true });
        Assert.Contains(rules, r => r.Match.IcmpType is { } t && t.First == t.Last && IcmpTypes.Name((byte)t.First, r.Match.Protocol!.Protocol == IpProtocol.Icmpv6) is not null);
        Assert.Contains("{ not: [", text);
        Assert.Contains("\"!@", text);
    }

    [Fact]
    public void A_ruleset_is_written_in_the_canonical_form()
    {
        var ruleset = new Ruleset("web",
            [
                new Chain("INPUT", Hook.NfInput, null, Verdict.Drop,
                [
                    new Rule("ssh", new Match
                    {
                        Source = new AddressMatch([IpPrefix.Parse("10.0.0.0/8")], negated: true),
                        Protocol = new ProtocolMatch(IpProtocol.Tcp),
                        DestinationPort = PortMatch.Single(22),
                    }, Verdict.Accept),
                    new Rule(null, new Match { Source = AddressMatch.InSet("blocklist") }, Verdict.Drop),
                    new Rule(null, new Match
                    {
                        Protocol = new ProtocolMatch(IpProtocol.Tcp),
                        DestinationPort = new PortMatch([new PortRange(80, 80), new PortRange(443, 443), new PortRange(8000, 8080)]),
                        TcpFlags = TcpFlagsMatch.Syn,
                    }, Verdict.Jump("WEB")),
                    new Rule(null, new Match
                    {
                        Protocol = new ProtocolMatch(IpProtocol.Icmp),
                        IcmpType = RangeMatch.Exactly(8),
                        Limit = new LimitMatch(5, RateUnit.Second, 10),
                    }, Verdict.Accept),
                    new Rule("true", Match.Any, Verdict.Log("IN-DROP: ")),
                    new Rule(null, Match.Any, Verdict.Reject(RejectWith.TcpReset)),
                ], priority: -10),
            ],
            userChains: [new UserChain("WEB", [new Rule(null, new Match { InInterface = new InterfaceMatch("eth0") }, Verdict.Return)])],
            sets: [new NamedSet("blocklist", SetType.Ipv4Network, [new SetElement(IpPrefix.Parse("203.0.113.0/24")), new SetElement(IpPrefix.Parse("198.51.100.7"))])]);

        Assert.Equal("""
            bpfilter: 1
            name: web
            sets:
              blocklist:
                type: ipv4-net
                elements: [203.0.113.0/24, 198.51.100.7]
            chains:
              - name: INPUT
                hook: nf-input
                priority: -10
                policy: drop
                rules:
                  - name: ssh
                    match: { source: "!10.0.0.0/8", protocol: tcp, destination-port: 22 }
                    action: accept
                  - match: { source: "@blocklist" }
                    action: drop
                  - match: { protocol: tcp, destination-port: [80, 443, 8000-8080], tcp-flags: syn }
                    action: { jump: WEB }
                  - match: { protocol: icmp, icmp-type: echo-request, limit: { rate: 5/second, burst: 10 } }
                    action: accept
                  - name: "true"
                    action: { log: "IN-DROP: " }
                  - action: { reject: tcp-reset }
              - name: WEB
                rules:
                  - match: { in-interface: eth0 }
                    action: return

            """.ReplaceLineEndings("\n"), YamlRulesetWriter.Write(ruleset));
    }

    [Fact]
    public void Values_yaml_would_misread_are_quoted_and_characters_it_refuses_are_escaped()
    {
        var ruleset = new Ruleset("0",
            [new Chain("123", Hook.CgroupIngress, null, Verdict.Accept,
                [new Rule("a \"b\" \\ c\u0085d\u2028e\uFEFF\U0001F525", Match.Any, Verdict.Log("x\u2028y"))], cgroup: "/sys/fs/cgroup/a b#c")]);
        var text = YamlRulesetWriter.Write(ruleset);
        Assert.Contains("name: \"0\"\n", text);
        Assert.Contains("- name: \"123\"\n", text);
        Assert.Contains("cgroup: \"/sys/fs/cgroup/a b#c\"\n", text);
        Assert.Contains("name: \"a \\\"b\\\" \\\\ c\\u0085d\\u2028e\\uFEFF\U0001F525\"\n", text);
        Assert.Contains("action: { log: \"x\\u2028y\" }\n", text);
        AssertSameRuleset(ruleset, Read(text));
    }

    [Fact]
    public void An_interface_whose_name_starts_with_a_bang_cannot_be_written()
    {
        var ruleset = new Ruleset("web", [new Chain("IN", Hook.NfInput, null, Verdict.Accept,
            [new Rule(null, new Match { InInterface = new InterfaceMatch("!eth0") }, Verdict.Drop)])]);
        var e = Assert.Throws<BpfilterException>(() => YamlRulesetWriter.Write(ruleset));
        Assert.Equal("RulesetNotWritable", e.ErrorId);
        Assert.Contains("'!eth0'", e.Message);
    }

    [Fact]
    public void A_lone_surrogate_cannot_be_written()
    {
        var ruleset = new Ruleset("web", [new Chain("IN", Hook.NfInput, null, Verdict.Accept, [new Rule("a\uD800b", Match.Any, Verdict.Drop)])]);
        var e = Assert.Throws<BpfilterException>(() => YamlRulesetWriter.Write(ruleset));
        Assert.Equal("RulesetNotWritable", e.ErrorId);
        Assert.Contains("U+D800", e.Message);
    }

    [Fact]
    public void The_demo_sample_writes_and_reads_back_equal() =>
        AssertSameRuleset(Samples.Demo, Read(YamlRulesetWriter.Write(Samples.Demo)));

    [Fact]
    public void Each_format_is_written_by_its_own_writer()
    {
        Assert.Equal(YamlRulesetWriter.Write(Samples.Demo), RulesetWriter.Write(Samples.Demo, RulesetFormat.Yaml));
        var input = Samples.Demo.Chains[0];
        var atInput = new Ruleset("demo", [new Chain("INPUT", Hook.NfInput, null, input.Policy, input.Rules)]);
        Assert.Equal(Formats.Iptables.IptablesSaveWriter.Write(atInput, IpFamily.Ipv4), RulesetWriter.Write(atInput, RulesetFormat.IptablesSave));
    }
}
