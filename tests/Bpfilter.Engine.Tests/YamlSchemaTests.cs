using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Bpfilter.Engine.Formats;
using Bpfilter.Engine.Rules;
using Json.Schema;
using Xunit;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Bpfilter.Engine.Tests;

/// <summary>
/// The JSON schema of YAML format v1 (src/Bpfilter/Schema, for editors) agrees with the reader: what the reader reads
/// (the demo, the example, every value form, generated rulesets) the schema accepts as an editor sees it, what the
/// schema should refuse it refuses, and its key lists and names are the reader's own tables.
/// </summary>
public sealed partial class YamlSchemaTests
{
    private static readonly string SchemaPath = Path.Combine(Samples.Root, "src", "Bpfilter", "Schema", "bpfilter-ruleset.schema.json");
    private static readonly Lazy<JsonSchema> Schema = new(() => JsonSchema.FromFile(SchemaPath));
    private static readonly Lazy<JsonNode> SchemaJson = new(() => JsonNode.Parse(File.ReadAllText(SchemaPath))!);

    private static JsonNode Definition(string name) => SchemaJson.Value["definitions"]![name]!;

    private static IEnumerable<string> Keys(JsonNode? properties) => properties!.AsObject().Select(p => p.Key);

    private static IEnumerable<string> Strings(JsonNode? array) => array!.AsArray().Select(v => v!.GetValue<string>());

    // ---- YAML as an editor sees it -----------------------------------------------------------------------------------

    [GeneratedRegex(@"^(~|null|Null|NULL|)$")]
    private static partial Regex NullWord();

    [GeneratedRegex(@"^[-+]?[0-9]+$")]
    private static partial Regex DecimalInteger();

    [GeneratedRegex(@"^0x[0-9a-fA-F]+$")]
    private static partial Regex HexInteger();

    [GeneratedRegex(@"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")]
    private static partial Regex Float();

    /// <summary>A plain scalar typed as YAML 1.2's core schema types it (as yaml-language-server does); quoted ones are strings.</summary>
    private static JsonNode? Typed(string value)
    {
        if (NullWord().IsMatch(value)) return null;
        if (value is "true" or "True" or "TRUE") return JsonValue.Create(true);
        if (value is "false" or "False" or "FALSE") return JsonValue.Create(false);
        if (DecimalInteger().IsMatch(value))
            return long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l) ? JsonValue.Create(l) : JsonValue.Create(decimal.Parse(value, CultureInfo.InvariantCulture));
        if (HexInteger().IsMatch(value) && long.TryParse(value.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var hex) && hex >= 0) return JsonValue.Create(hex);
        if (Float().IsMatch(value)) return JsonValue.Create(double.Parse(value, CultureInfo.InvariantCulture));
        return JsonValue.Create(value);
    }

    internal static JsonNode? ToJson(YamlNode node) => node switch
    {
        YamlScalarNode { Style: ScalarStyle.Plain or ScalarStyle.Any } plain => Typed(plain.Value ?? ""),
        YamlScalarNode quoted => JsonValue.Create(quoted.Value),
        YamlSequenceNode list => new JsonArray(list.Children.Select(ToJson).ToArray()),
        YamlMappingNode map => new JsonObject(map.Children.Select(e => KeyValuePair.Create(((YamlScalarNode)e.Key).Value!, ToJson(e.Value)))),
        _ => throw new ArgumentException($"no JSON for {node.NodeType}"),
    };

    /// <summary>Evaluates the YAML against the schema; the details only when asked (they cost ten times the time).</summary>
    private static EvaluationResults Evaluate(string yaml, bool details = false)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        return Schema.Value.Evaluate(ToJson(stream.Documents[0].RootNode),
            new EvaluationOptions { OutputFormat = details ? OutputFormat.List : OutputFormat.Flag });
    }

    private static string Problems(EvaluationResults results) =>
        string.Join("; ", results.Details.Where(d => d.Errors is { Count: > 0 }).Take(8)
            .Select(d => $"{d.InstanceLocation} ({d.EvaluationPath}): {string.Join(", ", d.Errors!.Values)}"));

    private static void AssertValid(string yaml)
    {
        if (!Evaluate(yaml).IsValid) Assert.Fail($"{Problems(Evaluate(yaml, details: true))}\n{yaml}");
    }

    // ---- What the reader reads, the schema accepts --------------------------------------------------------------------

    [Fact]
    public void The_schema_is_a_draft_07_schema_with_an_id() =>
        Assert.Equal(("http://json-schema.org/draft-07/schema#", "urn:bpfilter:ruleset:v1"),
            (SchemaJson.Value["$schema"]!.GetValue<string>(), SchemaJson.Value["$id"]!.GetValue<string>()));

    [Fact]
    public void The_demo_sample_is_valid() => AssertValid(File.ReadAllText(Samples.DemoPath));

    [Fact]
    public void The_example_of_the_format_is_valid() => AssertValid(YamlRuleLanguageTests.Example);

    [Theory]
    [MemberData(nameof(YamlRuleLanguageTests.Forms), MemberType = typeof(YamlRuleLanguageTests))]
    public void Every_value_form_the_reader_reads_is_valid(string match, Rules.Match _) =>
        AssertValid($"bpfilter: 1\nname: demo\nchains:\n  - name: IN\n    hook: nf-input\n    rules:\n      - {{ match: {{ {match} }}, action: drop }}\n");

    [Fact]
    public void Generated_rulesets_of_the_whole_model_are_valid()
    {
        var generator = new RulesetGenerator(4242);
        for (int i = 0; i < 100; i++) AssertValid(YamlRulesetWriter.Write(generator.Ruleset()));
    }

    // ---- What the schema should refuse, it refuses --------------------------------------------------------------------

    private const string Head = "bpfilter: 1\nname: demo\nchains:\n  - name: IN\n    hook: nf-input\n    rules:\n";

    [Theory]
    [InlineData("bpfilter: 2\nname: demo\nchains: [{ name: IN, hook: nf-input }]\n")]
    [InlineData("bpfilter: 1\nname: Demo\nchains: [{ name: IN, hook: nf-input }]\n")]
    [InlineData("bpfilter: 1\nname: demo\nextra: 1\nchains: [{ name: IN, hook: nf-input }]\n")]
    [InlineData("bpfilter: 1\nname: demo\nchains: []\n")]
    [InlineData("bpfilter: 1\nname: demo\nchains: [{ name: IN, hook: xdp }]\n")]
    [InlineData("bpfilter: 1\nname: demo\nchains: [{ name: IN, hook: nf-input, interface: eth0 }]\n")]
    [InlineData("bpfilter: 1\nname: demo\nchains: [{ name: IN, hook: nf-input, mode: generic }]\n")]
    [InlineData("bpfilter: 1\nname: demo\nchains: [{ name: IN, hook: tc }]\n")]
    [InlineData("bpfilter: 1\nname: demo\nchains: [{ name: IN, hook: nf-input }, { name: U, policy: drop }]\n")]
    [InlineData("bpfilter: 1\nname: demo\nsets: { a: { type: ipv5 } }\nchains: [{ name: IN, hook: nf-input }]\n")]
    [InlineData(Head + "      - { action: explode }\n")]
    [InlineData(Head + "      - { action: { jump: A, goto: B } }\n")]
    [InlineData(Head + "      - { match: { destnation-port: 22 }, action: drop }\n")]
    [InlineData(Head + "      - { match: { protocol: tcp, destination-port: 70000 }, action: drop }\n")]
    [InlineData(Head + "      - { match: { source: [\"!10.0.0.1\"] }, action: drop }\n")]
    [InlineData(Head + "      - { match: { source: 10.0.0.256 }, action: drop }\n")]
    [InlineData(Head + "      - { match: { family: \"!ipv4\" }, action: drop }\n")]
    [InlineData(Head + "      - { match: { limit: { rate: 5/second, not: 1 } }, action: drop }\n")]
    [InlineData(Head + "      - { match: { fragment: middle }, action: drop }\n")]
    [InlineData(Head + "      - { match: { protocol: [tcp] }, action: drop }\n")]
    public void An_invalid_ruleset_is_refused(string yaml) => Assert.False(Evaluate(yaml).IsValid, yaml);

    // ---- The schema's keys and names are the reader's ----------------------------------------------------------------

    [Fact]
    public void Every_mapping_of_the_schema_has_the_keys_of_the_reader_in_its_order()
    {
        Assert.Equal(YamlRulesetReader.RulesetKeys, Keys(SchemaJson.Value["properties"]));
        Assert.Equal(YamlRulesetReader.SetKeys, Keys(Definition("set")["properties"]));
        Assert.Equal(YamlRulesetReader.ChainKeys, Keys(Definition("hookedChain")["properties"]));
        Assert.Equal(YamlRulesetReader.UserChainKeys, Keys(Definition("userChain")["properties"]));
        Assert.Equal(YamlRulesetReader.RuleKeys, Keys(Definition("rule")["properties"]));
        Assert.Equal(YamlRulesetReader.MatchKeys, Keys(Definition("match")["properties"]));
        Assert.Equal(YamlRulesetReader.ActionWords, Strings(Definition("action")["oneOf"]![0]!["enum"]));
        Assert.Equal(YamlRulesetReader.ActionKeys, Keys(Definition("action")["oneOf"]![1]!["properties"]));
        Assert.Equal(YamlRulesetReader.TcpFlagsKeys, Keys(Definition("tcpFlagsMapping")["properties"]));
        var limitMapping = Definition("match")["properties"]!["limit"]!["anyOf"]!.AsArray().Single(a => a!["type"]?.GetValue<string>() == "object");
        Assert.Equal(YamlRulesetReader.LimitKeys, Keys(limitMapping!["properties"]));
    }

    [Fact]
    public void Exactly_the_negatable_keys_take_not_and_exactly_the_list_keys_take_lists()
    {
        foreach (var (key, condition) in Definition("match")["properties"]!.AsObject())
        {
            var forms = condition!["anyOf"]?.AsArray() ?? [];
            var negations = forms.Where(f => f!["required"] is { } r && Strings(r).SequenceEqual([YamlRulesetReader.NotKey])).ToList();
            Assert.True(YamlRulesetReader.NegatableKeys.Contains(key) == (negations.Count == 1), $"{key}: {negations.Count} negation forms");
            foreach (var negation in negations) Assert.Equal([YamlRulesetReader.NotKey], Keys(negation!["properties"]));
            var lists = forms.Count(f => f!["type"]?.GetValueKind() == System.Text.Json.JsonValueKind.String && f["type"]!.GetValue<string>() == "array");
            Assert.True(YamlRulesetReader.ListKeys.Contains(key) == (lists == 1), $"{key}: {lists} list forms");
        }
    }

    [Fact]
    public void The_names_in_the_schema_are_the_models()
    {
        Assert.Equal(HookNames.Names, Strings(Definition("hookedChain")["properties"]!["hook"]!["enum"]));
        Assert.Equal(SetTypeNames.Names, Strings(Definition("set")["properties"]!["type"]!["enum"]));
        Assert.Equal(Enum.GetNames<XdpMode>().Select(n => n.ToLowerInvariant()), Strings(Definition("hookedChain")["properties"]!["mode"]!["enum"]));
        Assert.Equal(Enum.GetNames<TcxOrder>().Select(n => n.ToLowerInvariant()), Strings(Definition("hookedChain")["properties"]!["order"]!["enum"]));
        var reject = Definition("action")["oneOf"]![1]!["properties"]!["reject"]!["anyOf"]![0]!["enum"];
        Assert.Equal(RejectWithNames.Names, Strings(reject));
        var match = Definition("match")["properties"]!;
        string Pattern(string key) => match[key]!["anyOf"]!.AsArray().First(f => f!["pattern"] is not null)!["pattern"]!.GetValue<string>();
        foreach (var protocol in IpProtocol.KnownNames) Assert.Contains($"|{protocol}|", "|" + Pattern("protocol")[4..]);
        foreach (var name in IcmpTypes.Names) Assert.Contains($"|{name}", Pattern("icmp-type"));
        foreach (var flag in Enum.GetNames<TcpFlags>().Where(f => f != "None" && f != "All")) Assert.Contains(flag.ToUpperInvariant(), Pattern("tcp-flags"));
    }
}
