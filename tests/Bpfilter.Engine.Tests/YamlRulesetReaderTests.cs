using Bpfilter.Engine.Formats;
using Bpfilter.Engine.Rules;
using Xunit;

namespace Bpfilter.Engine.Tests;

/// <summary>Finds files of the repository from the test assembly.</summary>
internal static class Samples
{
    public static string Root
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Bpfilter.psd1"))) return dir.FullName;
            }
            throw new InvalidOperationException($"no folder above {AppContext.BaseDirectory} holds Bpfilter.psd1");
        }
    }

    public static string DemoPath => Path.Combine(Root, "samples", "demo.yaml");

    public static Ruleset Demo => YamlRulesetReader.ReadFile(DemoPath);
}

public sealed class YamlRulesetReaderTests
{
    /// <summary>A valid ruleset up to "rules:"; the first rule starts on line 8.</summary>
    private const string Header = """
        bpfilter: 1
        name: demo
        chains:
          - name: INPUT
            hook: xdp
            interface: eth0
            rules:

        """;

    private static Ruleset Read(string yaml) => YamlRulesetReader.Read(new StringReader(yaml), "x.yaml");

    private static void AssertFails(string yaml, long line, long column, string reasonPart)
    {
        var e = Assert.Throws<RulesetFormatException>(() => Read(yaml));
        Assert.Equal("x.yaml", e.File);
        Assert.Equal((line, column), (e.Line, e.Column));
        Assert.Contains(reasonPart, e.Reason);
    }

    [Fact]
    public void Demo_sample_reads_into_the_expected_ruleset()
    {
        var ruleset = Samples.Demo;

        Assert.Equal("demo", ruleset.Name);
        Assert.Equal(Path.GetFullPath(Samples.DemoPath), ruleset.SourcePath);
        var chain = Assert.Single(ruleset.Chains);
        Assert.Equal(("INPUT", Hook.Xdp, "bpfd1", Verdict.Accept, XdpMode.Native),
            (chain.Name, chain.Hook, chain.Interface, chain.Policy, chain.Mode));
        Assert.Equal(
            [
                new Rule("drop-blocked-host", Matches.Simple(source: IpPrefix.Parse("10.200.0.66")), Verdict.Drop),
                new Rule("no-telnet", Matches.Simple(protocol: IpProtocol.Tcp, destinationPort: 23), Verdict.Drop),
                new Rule("allow-dns", Matches.Simple(destination: IpPrefix.Parse("10.200.0.0/24"), protocol: IpProtocol.Udp, destinationPort: 53), Verdict.Accept),
            ],
            chain.Rules);
    }

    [Fact]
    public void Omitted_policy_is_accept_and_omitted_mode_is_native()
    {
        var chain = Assert.Single(Read(Header + "      - action: drop\n").Chains);
        Assert.Equal((Verdict.Accept, XdpMode.Native), (chain.Policy, chain.Mode));
    }

    [Fact]
    public void Policy_and_mode_are_read_when_given()
    {
        var yaml = Header.Replace("    rules:\n", "    policy: drop\n    mode: generic\n");
        var chain = Assert.Single(Read(yaml).Chains);
        Assert.Equal((Verdict.Drop, XdpMode.Generic), (chain.Policy, chain.Mode));
        Assert.Empty(chain.Rules);
    }

    [Fact]
    public void Rule_without_a_name_is_accepted_and_matches_everything()
    {
        var rule = Assert.Single(Assert.Single(Read(Header + "      - action: drop\n").Chains).Rules);
        Assert.Equal(new Rule(null, Match.Any, Verdict.Drop), rule);
    }

    [Fact]
    public void Error_message_starts_with_file_line_and_column()
    {
        var e = Assert.Throws<RulesetFormatException>(() => Read("bpfilter: 1\nname: demo\nextra: 1\nchains: []\n"));
        Assert.StartsWith("x.yaml:3:1: ", e.Message);
        Assert.Equal("RulesetSyntax", e.ErrorId);
    }

    [Fact]
    public void Unknown_top_level_key_is_refused_at_the_key() =>
        AssertFails("bpfilter: 1\nname: demo\nextra: 1\nchains: []\n", 3, 1, "'extra' is not a ruleset key");

    [Fact]
    public void Unknown_match_key_is_refused_at_the_key() =>
        AssertFails(Header + "      - match: { destnation-port: 23 }\n        action: drop\n", 8, 18, "'destnation-port' is not a match key");

    [Fact]
    public void List_where_a_single_value_is_expected_is_refused() =>
        AssertFails("bpfilter: 1\nname: [a, b]\nchains: []\n", 2, 7, "name must be a single value, not a list");

    [Fact]
    public void Scalar_where_a_mapping_is_expected_is_refused() =>
        AssertFails(Header + "      - match: tcp\n        action: drop\n", 8, 16, "match must be a mapping");

    [Fact]
    public void Scalar_where_a_list_is_expected_is_refused() =>
        AssertFails("bpfilter: 1\nname: demo\nchains: INPUT\n", 3, 9, "chains must be a list");

    [Fact]
    public void Bad_ipv4_address_is_refused_at_the_value() =>
        AssertFails(Header + "      - match: { source: 10.0.0.256 }\n        action: drop\n", 8, 26, "'10.0.0.256' is not an IPv4 address");

    [Fact]
    public void Network_with_host_bits_set_is_refused_at_the_value() =>
        AssertFails(Header + "      - match: { source: 10.0.0.1/8 }\n        action: drop\n", 8, 26, "has host bits set; the network is 10.0.0.0/8");

    [Theory]
    [InlineData("70000")]
    [InlineData("ssh")]
    [InlineData("-1")]
    public void Port_that_is_not_0_to_65535_is_refused_at_the_value(string port) =>
        AssertFails(Header + $"      - match: {{ protocol: tcp, destination-port: {port} }}\n        action: drop\n",
            8, 51, $"destination-port: '{port}' is not a port");

    [Fact]
    public void Port_without_a_protocol_is_refused_at_the_port() =>
        AssertFails(Header + "      - match: { destination-port: 23 }\n        action: drop\n", 8, 36, "destination-port needs protocol tcp or udp");

    [Fact]
    public void Port_with_a_protocol_that_has_no_ports_is_refused_at_the_port() =>
        AssertFails(Header + "      - match: { protocol: icmp, source-port: 23 }\n        action: drop\n", 8, 47, "source-port needs protocol tcp or udp, not icmp");

    [Fact]
    public void Duplicate_rule_name_points_at_the_second_rule_name() =>
        AssertFails(Header + "      - name: a\n        action: drop\n      - name: a\n        action: accept\n", 10, 15, "two rules named 'a'");

    [Fact]
    public void Duplicate_yaml_key_is_refused_at_the_second_key() =>
        AssertFails("bpfilter: 1\nname: demo\nname: other\nchains: []\n", 3, 1, "Duplicate key");

    [Fact]
    public void Unknown_action_is_refused_with_the_allowed_ones() =>
        AssertFails(Header + "      - action: explode\n", 8, 17, "'explode' is not a verdict: use accept, drop, reject");

    [Fact]
    public void Unknown_hook_is_refused_with_the_allowed_ones() =>
        AssertFails(Header.Replace("hook: xdp", "hook: tc"), 5, 11, "hook: 'tc' is not one of xdp");

    [Fact]
    public void Missing_format_version_is_refused_at_the_ruleset() =>
        AssertFails("name: demo\nchains: []\n", 1, 1, "the ruleset has no 'bpfilter' key");

    [Fact]
    public void Unknown_format_version_is_refused_at_the_version() =>
        AssertFails("bpfilter: 2\nname: demo\nchains: []\n", 1, 11, "bpfilter: 2 is not a format version this module reads");

    [Fact]
    public void Upper_case_deployment_name_is_refused_at_the_name() =>
        AssertFails("bpfilter: 1\nname: Demo\nchains: []\n", 2, 7, "'Demo' is not a deployment name");

    [Fact]
    public void Ruleset_without_chains_is_refused() =>
        AssertFails("bpfilter: 1\nname: demo\nchains: []\n", 3, 9, "has no chains");

    [Fact]
    public void Unclosed_flow_mapping_at_the_end_is_a_syntax_error() =>
        AssertFails(Header + "      - match: { source: 10.0.0.1\n", 9, 1, "did not find expected ',' or '}'");

    // YamlDotNet throws InvalidOperationException (not YamlException) here; the reader must still give a position.
    [Fact]
    public void Unclosed_flow_mapping_followed_by_more_keys_is_a_syntax_error()
    {
        var e = Assert.Throws<RulesetFormatException>(() => Read(Header + "      - match: { source: 10.0.0.1\n        action: drop\n"));
        Assert.Equal("x.yaml", e.File);
        Assert.True(e.Line >= 8, $"line {e.Line}");
    }

    [Fact]
    public void Empty_document_is_refused() => AssertFails("", 1, 1, "the file is empty");

    [Fact]
    public void Two_documents_are_refused() => AssertFails("bpfilter: 1\n---\nbpfilter: 1\n", 1, 1, "more than one YAML document");
}
