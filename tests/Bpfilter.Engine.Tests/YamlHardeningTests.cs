using System.Diagnostics;
using System.Text;
using Bpfilter.Engine.Formats;
using Bpfilter.Engine.Rules;
using Xunit;

namespace Bpfilter.Engine.Tests;

/// <summary>
/// Hostile YAML ends in an error with a position, quickly and in bounded memory, never in a crash: one test per shape
/// of hostile input, each checking the position and the message. The limits are those of <see cref="YamlRulesetReader"/>.
/// </summary>
[Collection("yaml-reader")]
public sealed class YamlHardeningTests
{
    /// <summary>A valid ruleset up to "rules:"; the first rule starts on line 8.</summary>
    private const string Header = "bpfilter: 1\nname: demo\nchains:\n  - name: INPUT\n    hook: xdp\n    interface: eth0\n    rules:\n";

    private static Ruleset Read(string text) => YamlRulesetReader.Read(new StringReader(text), "x.yaml");

    private static RulesetFormatException Fails(string text) => Assert.Throws<RulesetFormatException>(() => Read(text));

    private static RulesetFormatException Fails(string text, long line, long column, string reasonPart)
    {
        var error = Fails(text);
        Assert.Equal("x.yaml", error.File);
        Assert.True((line, column) == (error.Line, error.Column), $"expected {line}:{column}, got {error.Line}:{error.Column}: {error.Reason}");
        Assert.Contains(reasonPart, error.Reason);
        Assert.StartsWith($"x.yaml:{line}:{column}: ", error.Message);
        return error;
    }

    /// <summary>Runs a read on this thread and returns how many bytes it allocated and how long it took.</summary>
    private static (long Bytes, TimeSpan Time) Cost(Action read)
    {
        var before = GC.GetAllocatedBytesForCurrentThread();
        var clock = Stopwatch.StartNew();
        read();
        return (GC.GetAllocatedBytesForCurrentThread() - before, clock.Elapsed);
    }

    private static string TempFile(byte[] content)
    {
        var path = Path.Combine(Path.GetTempPath(), $"bpft-yaml-{Guid.NewGuid():N}.yaml");
        File.WriteAllBytes(path, content);
        return path;
    }

    private static RulesetFormatException FailsFile(byte[] content)
    {
        var path = TempFile(content);
        try
        {
            var error = Assert.Throws<RulesetFormatException>(() => YamlRulesetReader.ReadFile(path));
            Assert.Equal(path, error.File);
            return error;
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    // ---- Deep nesting ------------------------------------------------------------------------------------------------

    [Fact]
    public void Flow_nesting_a_hundred_thousand_deep_is_refused_at_the_first_level_too_deep_before_it_can_exhaust_the_stack()
    {
        var text = "bpfilter: 1\nname: demo\nchains: " + new string('[', 100_000) + new string(']', 100_000) + "\n";
        var (bytes, time) = Cost(() => Fails(text, 3, 9 + YamlRulesetReader.MaxDepth - 1,
            $"the YAML nests deeper than {YamlRulesetReader.MaxDepth} levels, the limit for a ruleset"));
        Assert.True(bytes < 8 << 20, $"{bytes} bytes allocated");
        Assert.True(time < TimeSpan.FromSeconds(1), $"{time}");
    }

    [Fact]
    public void Block_nesting_of_lists_deeper_than_the_limit_is_refused_at_the_first_level_too_deep()
    {
        // chains is level 2 (the root mapping is 1); each line opens one more list.
        var lines = Enumerable.Range(0, 100).Select(i => new string(' ', 2 * i) + "-\n");
        Fails("bpfilter: 1\nname: demo\nchains:\n" + string.Concat(lines), 4 + YamlRulesetReader.MaxDepth - 1, 2 * (YamlRulesetReader.MaxDepth - 1) + 1,
            "nests deeper than");
    }

    [Fact]
    public void Block_nesting_of_mappings_deeper_than_the_limit_is_refused()
    {
        var lines = Enumerable.Range(0, 1000).Select(i => new string(' ', 2 * i) + "a:\n");
        Fails(string.Concat(lines), YamlRulesetReader.MaxDepth + 1, 2 * YamlRulesetReader.MaxDepth + 1, "nests deeper than");
    }

    [Fact]
    public void Nesting_up_to_the_limit_is_read_and_refused_only_for_its_type()
    {
        var text = "bpfilter: 1\nname: demo\nchains: " + new string('[', YamlRulesetReader.MaxDepth - 1) + new string(']', YamlRulesetReader.MaxDepth - 1) + "\n";
        Fails(text, 3, 10, "a chain must be a mapping of keys to values, not a list");
    }

    // ---- Huge numbers ------------------------------------------------------------------------------------------------

    [Theory]
    [InlineData("{ match: { protocol: tcp, destination-port: 99999999999999999999 }, action: drop }", 53, "destination-port: '99999999999999999999' is not a port")]
    [InlineData("{ match: { protocol: tcp, source-port: 65536 }, action: drop }", 48, "source-port: '65536' is not a port")]
    [InlineData("{ match: { protocol: 99999999999999999999 }, action: drop }", 30, "'99999999999999999999' is not a protocol")]
    [InlineData("{ match: { protocol: 256 }, action: drop }", 30, "'256' is not a protocol")]
    [InlineData("{ match: { source: 10.0.0.0/99999999999999999999 }, action: drop }", 28, "the prefix length must be 0 to 32")]
    [InlineData("{ match: { source: 10.0.0.99999999999999999999 }, action: drop }", 28, "is not an IPv4 address")]
    [InlineData("{ match: { source: 99999999999999999999.0.0.0 }, action: drop }", 28, "is not an IPv4 address")]
    public void Huge_numbers_in_a_rule_are_refused_at_the_value(string rule, long column, string message) =>
        Fails(Header + "      - " + rule + "\n", 8, column, message);

    [Theory]
    [InlineData("2147483648")]
    [InlineData("-2147483649")]
    [InlineData("99999999999999999999")]
    [InlineData("-99999999999999999999999999999999999999")]
    [InlineData("1e10")]
    [InlineData("0x7fffffff")]
    public void Priority_past_int_is_refused_with_the_range(string priority) =>
        Fails(Header.Replace("hook: xdp\n    interface: eth0", "hook: nf-input\n    priority: " + priority), 6, 15,
            $"priority: '{priority}' is not a whole number from -2147483646 to 2147483646");

    [Fact]
    public void Priority_the_kernel_reserves_is_refused_at_the_priority() =>
        Fails(Header.Replace("hook: xdp\n    interface: eth0", "hook: nf-input\n    priority: 2147483647") + "      - action: drop\n", 6, 15, "reserved by the kernel");

    [Fact]
    public void Huge_format_version_is_refused_at_the_version() =>
        Fails("bpfilter: 99999999999999999999\nname: demo\nchains: []\n", 1, 11, "is not a format version this module reads");

    // ---- Wrong types at every level ----------------------------------------------------------------------------------

    [Theory]
    [InlineData("- bpfilter: 1\n", 1, 1, "the ruleset must be a mapping of keys to values, not a list")]
    [InlineData("just words\n", 1, 1, "the ruleset must be a mapping of keys to values, not 'just words'")]
    [InlineData("bpfilter: [1]\nname: demo\nchains: []\n", 1, 11, "bpfilter must be a single value, not a list")]
    [InlineData("bpfilter: 1\nname: { a: b }\nchains: []\n", 2, 7, "name must be a single value, not a mapping")]
    [InlineData("bpfilter: 1\nname: demo\nchains: { a: b }\n", 3, 9, "chains must be a list, not a mapping")]
    [InlineData("bpfilter: 1\nname: demo\nchains:\n", 3, 8, "chains must be a list, not an empty value")]
    [InlineData("bpfilter: 1\nname: demo\nchains: [INPUT]\n", 3, 10, "a chain must be a mapping of keys to values, not 'INPUT'")]
    [InlineData("bpfilter: 1\nname: demo\nchains: [[INPUT]]\n", 3, 10, "a chain must be a mapping of keys to values, not a list")]
    [InlineData("bpfilter: 1\nname: demo\nchains: [{ name: [a], hook: xdp }]\n", 3, 18, "name must be a single value, not a list")]
    [InlineData("bpfilter: 1\nname: demo\nchains: [{ name: a, hook: { x: y } }]\n", 3, 27, "hook must be a single value, not a mapping")]
    [InlineData("bpfilter: 1\nname: demo\nchains: [{ name: a, hook: xdp, interface: [eth0] }]\n", 3, 43, "interface must be a single value, not a list")]
    [InlineData("bpfilter: 1\nname: demo\nchains: [{ name: a, hook: nf-input, priority: [1] }]\n", 3, 47, "priority must be a single value, not a list")]
    [InlineData("bpfilter: 1\nname: demo\nchains: [{ name: a, hook: xdp, interface: e, policy: { a: b } }]\n", 3, 54, "policy must be a single value, not a mapping")]
    [InlineData("bpfilter: 1\nname: demo\nchains: [{ name: a, hook: xdp, interface: e, mode: [native] }]\n", 3, 52, "mode must be a single value, not a list")]
    [InlineData("bpfilter: 1\nname: demo\nchains: [{ name: a, hook: xdp, interface: e, rules: drop }]\n", 3, 53, "rules must be a list, not 'drop'")]
    [InlineData(Header + "      - [drop]\n", 8, 9, "a rule must be a mapping of keys to values, not a list")]
    [InlineData(Header + "      - drop\n", 8, 9, "a rule must be a mapping of keys to values, not 'drop'")]
    [InlineData(Header + "      - ~\n", 8, 9, "a rule must be a mapping of keys to values, not '~'")]
    [InlineData(Header + "      - { name: { a: b }, action: drop }\n", 8, 17, "name must be a single value, not a mapping")]
    [InlineData(Header + "      - { match: [source], action: drop }\n", 8, 18, "match must be a mapping of keys to values, not a list")]
    [InlineData(Header + "      - { match: tcp, action: drop }\n", 8, 18, "match must be a mapping of keys to values, not 'tcp'")]
    [InlineData(Header + "      - { match: { source: { a: b } }, action: drop }\n", 8, 30, "'a' is not a key of source: a mapping here negates, as source: { not: VALUE }")]
    [InlineData(Header + "      - { match: { source: { not: { a: b } } }, action: drop }\n", 8, 35, "source must be a single value, not a mapping")]
    [InlineData(Header + "      - { match: { source: [[10.0.0.1]] }, action: drop }\n", 8, 29, "source must be a single value, not a list")]
    [InlineData(Header + "      - { match: { protocol: [tcp] }, action: drop }\n", 8, 30, "protocol must be a single value, not a list")]
    [InlineData(Header + "      - { match: { protocol: tcp, destination-port: [[23]] }, action: drop }\n", 8, 54, "destination-port must be a single value, not a list")]
    [InlineData(Header + "      - { match: { protocol: tcp, tcp-flags: [syn] }, action: drop }\n", 8, 46, "tcp-flags must be a single value, not a list")]
    [InlineData(Header + "      - { match: { limit: [5/second] }, action: drop }\n", 8, 27, "limit must be a single value, not a list")]
    [InlineData(Header + "      - { action: [drop] }\n", 8, 19, "action must be a verdict such as drop, or a mapping of one key such as { jump: CHAIN }, not a list")]
    [InlineData(Header + "      - { action: { jump: [A] } }\n", 8, 27, "jump must be a single value, not a list")]
    [InlineData(Header + "      - { action: 1 }\n", 8, 19, "'1' is not a verdict: use accept, drop")]
    public void Wrong_type_at_any_level_is_refused_at_the_value(string text, long line, long column, string message) =>
        Fails(text, line, column, message);

    [Theory]
    [InlineData(Header + "      - { [a]: b }\n", 8, 11, "a key must be a plain word, not a list")]
    [InlineData(Header + "      - { { a: b }: c }\n", 8, 11, "a key must be a plain word, not a mapping")]
    [InlineData("? [bpfilter]\n: 1\n", 1, 3, "a key must be a plain word, not a list")]
    public void Keys_that_are_lists_or_mappings_are_refused_at_the_key(string text, long line, long column, string message) =>
        Fails(text, line, column, message);

    [Fact]
    public void A_key_whose_mapping_YamlDotNet_ends_before_its_value_is_a_syntax_error_not_an_ArgumentException()
    {
        // YamlDotNet's parser emits MappingStart, a key and MappingEnd here, then the error; its node model would throw
        // ArgumentException ("The current event is of an unsupported type") on the missing value. Found by the fuzzer.
        var error = Fails("  : \u00e9\nname: x\n", 2, 1, "Did not find expected <document end>");
        Assert.IsAssignableFrom<YamlDotNet.Core.YamlException>(error.InnerException);
    }

    [Theory]
    [InlineData("bpfilter: 1\nname: !![demo]\n", 2, 5, "Global tags must be valid URIs.")]
    [InlineData("bpfilter: 1\nname: !<> demo\n", 2, 5, "Tag value must not be empty.")]
    public void A_tag_YamlDotNet_refuses_with_an_ArgumentException_is_an_error_just_before_it(string text, long line, long column, string message)
    {
        // Found by the fuzzer: YamlDotNet's parser throws ArgumentException, without a position, for these tags; the
        // error is at the end of the event before (the key), just before the tag.
        var error = Fails(text, line, column, "the YAML after this position is not valid: " + message);
        Assert.IsType<ArgumentException>(error.InnerException);
    }

    // ---- Anchors and aliases -----------------------------------------------------------------------------------------

    [Fact]
    public void An_anchor_is_refused_where_it_stands() =>
        Fails(Header + "      - &telnet { name: a, action: drop }\n", 8, 9, "anchors are not supported in rulesets");

    [Fact]
    public void An_alias_is_refused_where_it_stands() =>
        Fails(Header + "      - { name: a, action: *verdict }\n", 8, 28, "aliases are not supported in rulesets: *verdict");

    [Fact]
    public void An_alias_of_a_rule_is_refused_at_the_anchor_that_comes_first() =>
        Fails(Header + "      - &telnet { name: a, action: drop }\n      - *telnet\n", 8, 9, "remove &telnet");

    [Fact]
    public void A_merge_key_is_refused_at_its_alias() =>
        Fails(Header + "      - { <<: *base, action: drop }\n", 8, 15, "aliases are not supported in rulesets: *base");

    [Fact]
    public void A_billion_laughs_document_is_refused_at_its_first_anchor_quickly_and_in_bounded_memory()
    {
        var text = new StringBuilder("bpfilter: 1\nname: demo\na: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
        for (int i = 1; i < 10; i++)
            text.Append($"{(char)('a' + i)}: &{(char)('a' + i)} [{string.Join(',', Enumerable.Repeat($"*{(char)('a' + i - 1)}", 9))}]\n");
        text.Append("chains: [*j]\n");
        var (bytes, time) = Cost(() => Fails(text.ToString(), 3, 4, "anchors are not supported in rulesets"));
        Assert.True(bytes < 1 << 20, $"{bytes} bytes allocated");
        Assert.True(time < TimeSpan.FromSeconds(1), $"{time}");
    }

    [Fact]
    public void A_billion_laughs_document_of_aliases_alone_is_refused_at_its_first_alias()
    {
        // Without the anchors the aliases could not resolve; the reader must not get as far as trying.
        var text = "bpfilter: 1\nname: demo\nchains: [" + string.Join(',', Enumerable.Repeat("*lol", 100_000)) + "]\n";
        Fails(text, 3, 10, "aliases are not supported in rulesets: *lol");
    }

    // ---- Encodings and characters ------------------------------------------------------------------------------------

    [Fact]
    public void Invalid_UTF8_through_ReadFile_is_refused_at_the_bad_byte()
    {
        var error = FailsFile([.. Utf8("bpfilter: 1\nname: d"), 0xFF, 0xFE, (byte)'\n']);
        Assert.Equal((2L, 8L), (error.Line, error.Column));
        Assert.Contains("not valid UTF-8: the bytes here (0xFF 0xFE 0x0A) are not a UTF-8 character", error.Reason);
    }

    [Theory]
    [InlineData(new byte[] { 0xC0, 0xAF })]          // an overlong '/'
    [InlineData(new byte[] { 0xED, 0xA0, 0x80 })]    // a UTF-16 surrogate encoded as UTF-8
    [InlineData(new byte[] { 0xF4, 0x90, 0x80, 0x80 })] // past U+10FFFF
    [InlineData(new byte[] { 0x80 })]                // a continuation byte alone
    public void Invalid_UTF8_sequences_are_refused_at_their_first_byte(byte[] bad)
    {
        var error = FailsFile([.. Utf8("bpfilter: 1\nname: demo\nchains:\n  - name: \u00e9"), .. bad, (byte)'\n']);
        Assert.Equal((4L, 12L), (error.Line, error.Column));
        Assert.Contains("not valid UTF-8", error.Reason);
    }

    [Fact]
    public void A_file_ending_inside_a_UTF8_character_is_refused_at_it()
    {
        var error = FailsFile([.. Utf8("bpfilter: 1\nname: "), 0xE2, 0x82]);
        Assert.Equal((2L, 7L), (error.Line, error.Column));
        Assert.Contains("it ends inside a character (0xE2 0x82)", error.Reason);
    }

    [Fact]
    public void A_lone_surrogate_in_text_is_refused_at_it() =>
        Fails(Header + "      - action: dr\uD800op\n", 8, 19, "U+D800, half of a UTF-16 surrogate pair");

    [Fact]
    public void A_byte_order_mark_at_the_start_is_allowed_through_Read_and_ReadFile()
    {
        Assert.Single(Read("\uFEFF" + Header + "      - action: drop\n").Chains);
        var path = TempFile([0xEF, 0xBB, 0xBF, .. Utf8(Header + "      - action: drop\n")]);
        try
        {
            Assert.Single(Assert.Single(YamlRulesetReader.ReadFile(path).Chains).Rules);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void A_byte_order_mark_inside_the_text_is_refused_at_it()
    {
        Fails(Header + "      - action: drop\n\uFEFF      - action: accept\n", 9, 1, "a byte order mark (U+FEFF) may only start the file");
        var error = FailsFile([0xEF, 0xBB, 0xBF, 0xEF, 0xBB, 0xBF, .. Utf8(Header)]);
        Assert.Equal((1L, 1L), (error.Line, error.Column));
        Assert.Contains("byte order mark", error.Reason);
    }

    [Fact]
    public void A_UTF16_file_with_a_byte_order_mark_is_read_and_a_broken_one_refused()
    {
        var path = TempFile([0xFF, 0xFE, .. Encoding.Unicode.GetBytes(Header + "      - action: drop\n")]);
        try
        {
            Assert.Single(Assert.Single(YamlRulesetReader.ReadFile(path).Chains).Rules);
        }
        finally
        {
            File.Delete(path);
        }
        var error = FailsFile([0xFF, 0xFE, .. Encoding.Unicode.GetBytes("bpfilter: 1\nname: "), 0x00, 0xDC, .. Encoding.Unicode.GetBytes("x\n")]);
        Assert.Equal((2L, 7L), (error.Line, error.Column));
        Assert.Contains("not valid UTF-16: U+DC00 here is half of a surrogate pair", error.Reason);
    }

    [Fact]
    public void A_NUL_byte_is_refused_at_it_rather_than_ending_the_file_early()
    {
        // YamlDotNet treats NUL as the end of its input: without the check the second rule would vanish silently.
        Fails(Header + "      - action: drop\n\0      - action: accept\n", 9, 1, "NUL character (U+0000)");
        var error = FailsFile(Utf8(Header + "      - action: dr\0op\n"));
        Assert.Equal((8L, 19L), (error.Line, error.Column));
        Assert.Contains("NUL", error.Reason);
    }

    [Fact]
    public void A_NUL_written_as_an_escape_is_shown_escaped_in_the_message()
    {
        var error = Fails("bpfilter: 1\nname: \"de\\0mo\\e\"\nchains: []\n", 2, 7, "'de\\u0000mo\\u001B' is not a deployment name");
        Assert.DoesNotContain('\0', error.Message);
    }

    [Theory]
    [InlineData('\u0001')]
    [InlineData('\u001B')]
    [InlineData('\u007F')]
    [InlineData('\u009B')]
    [InlineData('\uFFFF')]
    public void Control_characters_are_refused_at_them(char c) =>
        Fails(Header + $"      - action: dr{c}op\n", 8, 19, $"U+{(int)c:X4}");

    [Fact]
    public void Reading_dev_zero_stops_at_the_size_limit_instead_of_reading_forever()
    {
        if (!File.Exists("/dev/zero")) return;
        var error = Assert.Throws<RulesetFormatException>(() => YamlRulesetReader.ReadFile("/dev/zero"));
        Assert.Equal((1L, 1L), (error.Line, error.Column));
        Assert.Contains("limited to 16777216 bytes", error.Reason);
    }

    // ---- Tabs --------------------------------------------------------------------------------------------------------

    [Fact]
    public void A_tab_in_block_indentation_is_refused_at_the_tab() =>
        Fails(Header + "\t- action: drop\n", 8, 1, "YAML indents with spaces, not tabs");

    [Fact]
    public void A_tab_in_the_indentation_of_a_key_is_refused_at_the_tab() =>
        Fails(Header.Replace("    hook", "\thook"), 5, 1, "YAML indents with spaces, not tabs");

    [Fact]
    public void A_tab_in_the_indentation_of_a_flow_mapping_is_refused_at_the_tab() =>
        Fails(Header + "      - {\n\taction: drop }\n", 9, 1, "YAML indents with spaces, not tabs");

    [Fact]
    public void A_tab_between_a_key_and_its_value_is_allowed() =>
        Assert.Equal(Verdict.Drop, Assert.Single(Assert.Single(Read(Header + "      - action:\tdrop\n").Chains).Rules).Verdict);

    // ---- Sizes -------------------------------------------------------------------------------------------------------

    [Fact]
    public void An_enormous_line_is_refused_at_the_value_without_reading_it_into_a_message()
    {
        var error = Fails("bpfilter: 1\nname: " + new string('x', 4_000_000) + "\nchains: []\n", 2, 7,
            $"a value of 4000000 characters is longer than {YamlRulesetReader.MaxScalarLength}, the limit for one value");
        Assert.True(error.Message.Length < 200, error.Message);
    }

    [Fact]
    public void An_enormous_comment_line_is_allowed() =>
        Assert.Single(Read("# " + new string('x', 4_000_000) + "\n" + Header + "      - action: drop\n").Chains);

    [Fact]
    public void A_value_as_long_as_the_limit_is_allowed_and_one_longer_is_refused()
    {
        string Cgroup(int length) => "bpfilter: 1\nname: demo\nchains:\n  - name: c\n    hook: cgroup-ingress\n    cgroup: /" + new string('a', length - 1) + "\n";
        Assert.Equal(YamlRulesetReader.MaxScalarLength, Assert.Single(Read(Cgroup(YamlRulesetReader.MaxScalarLength)).Chains).Cgroup!.Length);
        Fails(Cgroup(YamlRulesetReader.MaxScalarLength + 1), 6, 13, "the limit for one value");
    }

    [Fact]
    public void An_enormous_key_or_tag_is_refused_at_it()
    {
        Fails("bpfilter: 1\n? " + new string('k', 10_000) + "\n: 1\n", 2, 3, "a value of 10000 characters");
        Fails(Header + "      - !" + new string('t', 10_000) + " { action: drop }\n", 8, 9, "a tag of 10001 characters");
    }

    [Fact]
    public void A_file_over_the_size_limit_is_refused_before_it_is_read()
    {
        var error = FailsFile(new byte[YamlRulesetReader.MaxFileBytes + 1]);
        Assert.Equal((1L, 1L), (error.Line, error.Column));
        Assert.Contains($"the file has {YamlRulesetReader.MaxFileBytes + 1} bytes; rulesets are limited to {YamlRulesetReader.MaxFileBytes} bytes", error.Reason);
    }

    [Fact]
    public void Text_over_the_size_limit_is_refused_where_it_goes_past_it()
    {
        var text = "bpfilter: 1\nname: demo\n" + string.Concat(Enumerable.Repeat("#" + new string('x', 1022) + "\n", 16 * 1024 + 1));
        var error = Fails(text);
        Assert.Contains($"longer than {YamlRulesetReader.MaxFileBytes} characters", error.Reason);
        Assert.True(error.Line > 16 * 1024, $"line {error.Line}");
    }

    [Fact]
    public void A_second_document_is_refused_without_reading_the_rest()
    {
        var text = Header + "      - action: drop\n" + string.Concat(Enumerable.Repeat("---\n", 1_000_000));
        var (_, time) = Cost(() => Fails(text, 1, 1, "the file holds more than one YAML document"));
        Assert.True(time < TimeSpan.FromSeconds(1), $"{time}");
    }

    // ---- Counts ------------------------------------------------------------------------------------------------------

    [Fact]
    public void A_chain_of_a_hundred_thousand_rules_loads()
    {
        var rules = new StringBuilder(Header);
        for (int i = 0; i < YamlRulesetReader.MaxRulesPerChain; i++)
            rules.Append($"      - {{ name: r{i}, match: {{ source: 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}, protocol: tcp, destination-port: {i % 65536} }}, action: drop }}\n");
        Assert.Equal(YamlRulesetReader.MaxRulesPerChain, Assert.Single(Read(rules.ToString()).Chains).Rules.Count);
    }

    [Fact]
    public void Too_many_rules_in_a_chain_are_refused_at_the_first_one_too_many()
    {
        var rules = string.Concat(Enumerable.Repeat("      - { action: drop }\n", YamlRulesetReader.MaxRulesPerChain + 1));
        Fails(Header + rules, 8 + YamlRulesetReader.MaxRulesPerChain, 9,
            $"chain 'INPUT' has more than {YamlRulesetReader.MaxRulesPerChain} rules, the limit per chain");
    }

    [Fact]
    public void Too_many_rules_in_all_are_refused_at_the_first_one_too_many()
    {
        var perChain = YamlRulesetReader.MaxRules / 2;
        var text = new StringBuilder("bpfilter: 1\nname: demo\nchains:\n");
        for (int c = 0; c < 3; c++)
            text.Append($"  - name: c{c}\n    hook: xdp\n    interface: eth{c}\n    rules: [{string.Join(',', Enumerable.Repeat("{action: drop}", perChain))}]\n");
        var error = Fails(text.ToString());
        Assert.Contains($"the ruleset has more than {YamlRulesetReader.MaxRules} rules in all its chains", error.Reason);
        Assert.Equal((15L, 13L), (error.Line, error.Column));
    }

    [Fact]
    public void Too_many_chains_are_refused_at_the_first_one_too_many()
    {
        var chains = string.Concat(Enumerable.Range(0, YamlRulesetReader.MaxChains + 1).Select(i => $"  - {{ name: c{i}, hook: xdp, interface: e{i} }}\n"));
        Fails("bpfilter: 1\nname: demo\nchains:\n" + chains, 4 + YamlRulesetReader.MaxChains, 5,
            $"the ruleset has more than {YamlRulesetReader.MaxChains} chains, the limit per ruleset");
    }

    [Fact]
    public void Too_many_nodes_are_refused_before_the_node_model_grows_past_the_limit()
    {
        var text = "bpfilter: 1\nname: [" + string.Join(',', Enumerable.Repeat("a", YamlRulesetReader.MaxNodes)) + "]\n";
        var error = Fails(text);
        Assert.Contains($"the YAML has more than {YamlRulesetReader.MaxNodes} nodes", error.Reason);
        // Two nodes ("bpfilter", "1") and the root before the list, "name" and the list itself: the last "a" is too many.
        Assert.Equal((2L, 8L + 2L * (YamlRulesetReader.MaxNodes - 5)), (error.Line, error.Column));
    }

    // ---- Errors of the input itself ----------------------------------------------------------------------------------

    private sealed class FailingReader(Exception failure) : TextReader
    {
        private int _calls;

        public override int Read(char[] buffer, int index, int count)
        {
            if (_calls++ > 0) throw failure;
            var text = "bpfilter: 1\nname: demo\n";
            text.CopyTo(0, buffer, index, text.Length);
            return text.Length;
        }
    }

    [Fact]
    public void An_IO_error_of_the_reader_is_an_error_with_a_position()
    {
        var error = Assert.Throws<RulesetFormatException>(() => YamlRulesetReader.Read(new FailingReader(new IOException("disk on fire")), "x.yaml"));
        Assert.Contains("disk on fire", error.Reason);
        Assert.IsType<IOException>(error.InnerException);
    }

    [Fact]
    public void A_decoding_error_of_the_reader_is_an_error_with_a_position()
    {
        var error = Assert.Throws<RulesetFormatException>(() =>
            YamlRulesetReader.Read(new FailingReader(new DecoderFallbackException("bad byte")), "x.yaml"));
        Assert.Contains("not valid UTF-8", error.Reason);
        Assert.Equal(3L, error.Line);
    }

    [Theory]
    [InlineData("")]
    [InlineData("bad\0name")]
    public void A_name_that_is_no_path_still_reads_with_no_source_path(string file)
    {
        var ruleset = YamlRulesetReader.Read(new StringReader(Header + "      - action: drop\n"), file);
        Assert.Null(ruleset.SourcePath);
        var error = Assert.Throws<RulesetFormatException>(() => YamlRulesetReader.Read(new StringReader("bpfilter: 2\n"), file));
        Assert.Equal((1L, 11L), (error.Line, error.Column));
    }

    [Theory]
    [InlineData("/")]
    [InlineData("/nonexistent/dir/x.yaml")]
    [InlineData("bad\0path.yaml")]
    [InlineData("")]
    public void A_path_that_names_no_file_is_RulesetNotFound(string path)
    {
        var error = Assert.Throws<BpfilterException>(() => YamlRulesetReader.ReadFile(path));
        Assert.Equal("RulesetNotFound", error.ErrorId);
    }
}
