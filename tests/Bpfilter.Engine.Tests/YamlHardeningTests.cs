using System.Text;
using Bpfilter.Engine.Formats;
using Xunit;

namespace Bpfilter.Engine.Tests;

/// <summary>Hostile YAML ends in an error with a position, quickly and in bounded memory, never in a crash.</summary>
public sealed class YamlHardeningTests
{
    private const string Header = "bpfilter: 1\nname: demo\nchains:\n  - name: INPUT\n    hook: xdp\n    interface: eth0\n    rules:\n";

    private static RulesetFormatException Fails(string text) =>
        Assert.Throws<RulesetFormatException>(() => YamlRulesetReader.Read(new StringReader(text), "x.yaml"));

    [Fact]
    public void Nesting_a_hundred_thousand_deep_is_refused_before_it_can_exhaust_the_stack()
    {
        var text = "bpfilter: 1\nname: demo\nchains: " + new string('[', 100_000) + new string(']', 100_000) + "\n";
        var error = Fails(text);
        Assert.Contains($"nests deeper than {YamlRulesetReader.MaxDepth} levels", error.Message);
        Assert.Equal(3, error.Line);
    }

    [Fact]
    public void A_billion_laughs_document_is_refused_at_its_first_anchor()
    {
        var text = new StringBuilder("bpfilter: 1\nname: demo\na: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
        for (int i = 1; i < 10; i++) text.Append($"{(char)('a' + i)}: &{(char)('a' + i)} [{string.Join(',', Enumerable.Repeat($"*{(char)('a' + i - 1)}", 9))}]\n");
        var error = Fails(text.ToString());
        Assert.Contains("anchors (&a) are not supported", error.Message);
        Assert.Equal((3L, 4L), (error.Line, error.Column));
    }

    [Fact]
    public void An_alias_of_a_rule_is_refused_where_it_stands()
    {
        var error = Fails(Header + "      - &telnet { name: a, action: drop }\n      - *telnet\n");
        Assert.Contains("not supported in rulesets", error.Message);
        Assert.Equal(8, error.Line);
    }

    [Fact]
    public void Too_many_rules_in_a_chain_are_refused_with_the_position_of_the_first_one_too_many()
    {
        var rules = string.Concat(Enumerable.Repeat("      - { action: drop }\n", YamlRulesetReader.MaxRulesPerChain + 1));
        var error = Fails(Header + rules);
        Assert.Contains($"more than {YamlRulesetReader.MaxRulesPerChain} rules", error.Message);
        Assert.Equal(8 + YamlRulesetReader.MaxRulesPerChain, error.Line);
    }

    [Theory]
    [InlineData("      - { match: { destination-port: 99999999999999999999 }, action: drop }\n", "is not a port")]
    [InlineData("      - { match: { protocol: tcp, destination-port: [23] }, action: drop }\n", "must be a single value")]
    [InlineData("      - { match: [ source ], action: drop }\n", "must be a mapping")]
    [InlineData("      - drop\n", "must be a mapping")]
    public void Huge_numbers_and_wrong_types_are_errors_with_a_position(string rule, string message)
    {
        var error = Fails(Header + rule);
        Assert.Contains(message, error.Message);
        Assert.Equal(8, error.Line);
    }

    [Fact]
    public void Invalid_UTF8_is_an_error_at_the_file_not_a_crash()
    {
        var path = Path.Combine(Path.GetTempPath(), $"bpft-{Guid.NewGuid():N}.yaml");
        try
        {
            File.WriteAllBytes(path, [.. Encoding.UTF8.GetBytes("bpfilter: 1\nname: d"), 0xff, 0xfe, (byte)'\n']);
            var error = Assert.Throws<RulesetFormatException>(() => YamlRulesetReader.ReadFile(path));
            Assert.Contains("not valid UTF-8", error.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void An_enormous_line_is_an_error_with_its_position()
    {
        var error = Fails("bpfilter: 1\nname: " + new string('x', 4_000_000) + "\nchains: []\n");
        Assert.Contains("is not a deployment name", error.Message);
        Assert.Equal((2L, 7L), (error.Line, error.Column));
    }
}
