using System.Globalization;
using System.Text;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Tests;

/// <summary>One input of the YAML fuzzer: text for <c>Read</c>, or bytes for <c>ReadFile</c>.</summary>
/// <param name="Kind">Which generator made it, for the statistics and for failure reports.</param>
/// <param name="ExpectedRules">For inputs that must read: the number of rules of each chain.</param>
internal sealed record FuzzInput(string Kind, string? Text, byte[]? Bytes, int[]? ExpectedRules)
{
    public int Length => Text?.Length ?? Bytes!.Length;
}

/// <summary>
/// Makes the inputs of <see cref="YamlFuzzTests"/>. Input <c>i</c> of seed <c>s</c> depends on nothing else, so any
/// input can be made again from its number: mutations of valid rulesets (samples/demo.yaml and generated ones),
/// generated rulesets that must read, generated rulesets with structural faults, splices, deep nesting, anchors and
/// aliases (billion laughs), odd YAML (directives, tags, documents, block scalars) and byte-level damage read
/// through a file.
/// </summary>
internal sealed class YamlFuzzer(int seed, IReadOnlyList<string> corpus)
{
    private const int MaxText = 256 * 1024;

    public FuzzInput Make(long index)
    {
        var rng = new Random(Mix(seed, index));
        return rng.Next(100) switch
        {
            < 12 => Valid(rng),
            < 50 => Mutated(rng),
            < 62 => Wrong(rng),
            < 68 => Spliced(rng),
            < 76 => Nested(rng),
            < 84 => Aliased(rng),
            < 93 => Odd(rng),
            _ => Damaged(rng),
        };
    }

    private static int Mix(int seed, long index)
    {
        ulong z = ((ulong)(uint)seed << 32) ^ (ulong)index;
        z += 0x9E3779B97F4A7C15;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
        return (int)(z ^ (z >> 31));
    }

    // ---- A small YAML tree and its emitter ---------------------------------------------------------------------------

    private abstract record Y;

    private sealed record YScalar(string Value) : Y;

    private sealed record YMap(List<(string Key, Y Value)> Entries) : Y;

    private sealed record YList(List<Y> Items) : Y;

    private sealed class Emitter(Random rng)
    {
        private readonly double _flow = rng.Next(4) switch { 0 => 0, 1 => 1, _ => 0.3 };
        private readonly int _indent = rng.Next(3) == 0 ? 4 : 2;
        private readonly bool _comments = rng.Next(4) == 0;
        private readonly StringBuilder _text = new();

        public string Document(Y root)
        {
            if (rng.Next(20) == 0) _text.Append('\uFEFF');
            if (rng.Next(10) == 0) _text.Append("# generated\n");
            if (rng.Next(20) == 0) _text.Append("%YAML 1.1\n---\n");
            else if (rng.Next(10) == 0) _text.Append("---\n");
            Block(root, 0);
            if (rng.Next(20) == 0) _text.Append("...\n");
            var text = _text.ToString();
            return rng.Next(10) == 0 ? text.Replace("\n", "\r\n") : text;
        }

        private bool Flow(Y node) => node is YMap { Entries.Count: 0 } or YList { Items.Count: 0 } || rng.NextDouble() < _flow;

        private void Block(Y node, int indent)
        {
            switch (node)
            {
                case YScalar s:
                    _text.Append(' ', indent).Append(Scalar(s.Value, flow: false)).Append('\n');
                    break;
                case YMap m when !Flow(m):
                    Entries(m.Entries, indent);
                    break;
                case YList l when !Flow(l):
                    foreach (var item in l.Items)
                    {
                        _text.Append(' ', indent).Append('-');
                        if (item is YMap { Entries.Count: > 0 } im && !Flow(im) && rng.Next(3) != 0)
                        {
                            // "- key: value" with the other keys under the first.
                            var (firstKey, firstValue) = im.Entries[0];
                            _text.Append(' ').Append(Scalar(firstKey, flow: false)).Append(':');
                            Value(firstValue, indent + 2);
                            Entries(im.Entries.Skip(1), indent + 2);
                        }
                        else Value(item, indent);
                    }
                    break;
                default:
                    _text.Append(' ', indent);
                    Inline(node);
                    _text.Append('\n');
                    break;
            }
        }

        private void Entries(IEnumerable<(string Key, Y Value)> entries, int indent)
        {
            foreach (var (key, value) in entries)
            {
                if (_comments && rng.Next(8) == 0) _text.Append(' ', indent).Append("# a comment: [with] {punctuation}\n");
                _text.Append(' ', indent).Append(Scalar(key, flow: false)).Append(':');
                Value(value, indent);
            }
        }

        private void Value(Y value, int indent)
        {
            if (value is YScalar s)
            {
                _text.Append(' ').Append(Scalar(s.Value, flow: false));
                if (_comments && rng.Next(6) == 0) _text.Append(" # why");
                _text.Append('\n');
            }
            else if (Flow(value))
            {
                _text.Append(' ');
                Inline(value);
                _text.Append('\n');
            }
            else
            {
                _text.Append('\n');
                Block(value, indent + _indent);
            }
        }

        private void Inline(Y node)
        {
            switch (node)
            {
                case YScalar s:
                    _text.Append(Scalar(s.Value, flow: true));
                    break;
                case YMap m:
                    _text.Append('{');
                    for (int i = 0; i < m.Entries.Count; i++)
                    {
                        _text.Append(i == 0 ? " " : ", ").Append(Scalar(m.Entries[i].Key, flow: true)).Append(": ");
                        Inline(m.Entries[i].Value);
                    }
                    _text.Append(m.Entries.Count == 0 ? "}" : " }");
                    break;
                case YList l:
                    _text.Append('[');
                    for (int i = 0; i < l.Items.Count; i++)
                    {
                        if (i > 0) _text.Append(", ");
                        Inline(l.Items[i]);
                    }
                    _text.Append(']');
                    break;
            }
        }

        private string Scalar(string value, bool flow)
        {
            bool plain = value.Length > 0 && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '/' or '-')
                && !value.StartsWith('-') && value is not ("~" or "null" or "Null" or "NULL");
            int style = plain ? rng.Next(6) : 1 + rng.Next(2);
            return style switch
            {
                1 when !value.Any(char.IsControl) && !value.Any(c => c is '\u0085' or '\u2028' or '\u2029' or '\uFEFF' || char.IsSurrogate(c))
                    => "'" + value.Replace("'", "''") + "'",
                1 or 2 => Quoted(value),
                _ => value,
            };
        }

        private static string Quoted(string value)
        {
            var text = new StringBuilder("\"");
            foreach (var c in value)
            {
                text.Append(c switch
                {
                    '"' => "\\\"",
                    '\\' => "\\\\",
                    '\n' => "\\n",
                    '\t' => "\\t",
                    '\0' => "\\0",
                    _ when char.IsControl(c) || char.IsSurrogate(c) || c is '\uFEFF' or '\u2028' or '\u2029' or '\uFFFE' or '\uFFFF'
                        => "\\u" + ((int)c).ToString("X4", CultureInfo.InvariantCulture),
                    _ => c.ToString(),
                });
            }
            return text.Append('"').ToString();
        }
    }

    // ---- Valid rulesets ----------------------------------------------------------------------------------------------

    private static readonly string[] Hooks = [.. HookNames.Names, "Xdp", "TcIngress", "NfInput", "CgroupEgress", "XDP"];
    private static readonly string[] Protocols = ["tcp", "udp", "icmp", "6", "17", "1", "47", "TCP", "0", "255"];

    private static T Pick<T>(Random rng, IReadOnlyList<T> items) => items[rng.Next(items.Count)];

    private static string Prefix(Random rng)
    {
        var length = rng.Next(4) == 0 ? 32 : rng.Next(33);
        var mask = length == 0 ? 0u : uint.MaxValue << (32 - length);
        var address = (uint)rng.NextInt64(0, 1L << 32) & mask;
        var text = $"{address >> 24}.{(address >> 16) & 255}.{(address >> 8) & 255}.{address & 255}";
        return length == 32 && rng.Next(2) == 0 ? text : $"{text}/{length}";
    }

    private static YMap Rule(Random rng, int index)
    {
        var entries = new List<(string, Y)>();
        if (rng.Next(2) == 0) entries.Add(("name", new YScalar(Pick(rng, ["r", "allow-", "drop_", "web.", "a:b:", "R"]) + index)));
        if (rng.Next(10) < 7)
        {
            var match = new List<(string, Y)>();
            if (rng.Next(2) == 0) match.Add(("source", new YScalar(Prefix(rng))));
            if (rng.Next(2) == 0) match.Add(("destination", new YScalar(Prefix(rng))));
            if (rng.Next(3) != 0)
            {
                var protocol = Pick(rng, Protocols);
                match.Add(("protocol", new YScalar(protocol)));
                if (protocol.ToLowerInvariant() is "tcp" or "udp" or "6" or "17")
                {
                    if (rng.Next(2) == 0) match.Add(("source-port", new YScalar(rng.Next(65536).ToString(CultureInfo.InvariantCulture))));
                    if (rng.Next(2) == 0) match.Add(("destination-port", new YScalar(rng.Next(65536).ToString(CultureInfo.InvariantCulture))));
                }
            }
            Shuffle(rng, match);
            entries.Add(("match", new YMap(match)));
        }
        entries.Add(("action", new YScalar(Pick(rng, ["accept", "drop"]))));
        Shuffle(rng, entries);
        return new YMap(entries);
    }

    private static YMap Ruleset(Random rng, out int[] rules, int maxRules = 12)
    {
        int chainCount = 1 + rng.Next(4);
        rules = new int[chainCount];
        var chains = new List<Y>();
        for (int c = 0; c < chainCount; c++)
        {
            var hookText = Pick(rng, Hooks);
            HookNames.TryParse(hookText, out var hook);
            var entries = new List<(string, Y)>
            {
                ("name", new YScalar(Pick(rng, ["INPUT", "OUTPUT", "web", "c", "x-y", "A_b", "9"]) + c)),
                ("hook", new YScalar(hookText)),
            };
            switch (hook.Target())
            {
                case HookTarget.Interface:
                    entries.Add(("interface", new YScalar($"eth{c}")));
                    break;
                case HookTarget.Cgroup:
                    entries.Add(("cgroup", new YScalar(rng.Next(2) == 0 ? $"/sys/fs/cgroup/t{c}" : $"svc/t{c}")));
                    break;
                default:
                    // Every netfilter chain gets a priority of its own, so that no two attach at the same point.
                    entries.Add(("priority", new YScalar((c * 10 - 15).ToString(CultureInfo.InvariantCulture))));
                    break;
            }
            if (rng.Next(5) == 0) entries.Add(("namespace", new YScalar(rng.Next(2) == 0 ? "ns1" : "/run/netns/ns1")));
            if (hook == Hook.Xdp && rng.Next(2) == 0) entries.Add(("mode", new YScalar(Pick(rng, ["native", "generic", "offload"]))));
            if (hook is Hook.TcIngress or Hook.TcEgress && rng.Next(2) == 0) entries.Add(("order", new YScalar(Pick(rng, ["first", "last"]))));
            if (rng.Next(2) == 0) entries.Add(("policy", new YScalar(Pick(rng, ["accept", "drop"]))));
            if (rng.Next(10) < 8)
            {
                rules[c] = rng.Next(maxRules + 1);
                entries.Add(("rules", new YList(Enumerable.Range(0, rules[c]).Select(i => (Y)Rule(rng, i)).ToList())));
            }
            Shuffle(rng, entries);
            chains.Add(new YMap(entries));
        }
        var root = new List<(string, Y)>
        {
            ("bpfilter", new YScalar("1")),
            ("name", new YScalar(Pick(rng, ["demo", "web", "a", "x-1", "0", "fw_2"]))),
            ("chains", new YList(chains)),
        };
        Shuffle(rng, root);
        return new YMap(root);
    }

    private static void Shuffle<T>(Random rng, List<T> items)
    {
        for (int i = items.Count - 1; i > 0; i--)
        {
            int j = rng.Next(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    private static string ValidText(Random rng, out int[] rules) => new Emitter(rng).Document(Ruleset(rng, out rules));

    private FuzzInput Valid(Random rng) => new("valid", ValidText(rng, out var rules), null, rules);

    private string Base(Random rng) => rng.Next(3) == 0 ? Pick(rng, corpus) : ValidText(rng, out _);

    // ---- Structured but wrong ----------------------------------------------------------------------------------------

    private static readonly string[] HostileScalars =
    [
        "99999999999999999999", "-99999999999999999999", "2147483648", "-2147483649", "2147483647", "-2147483648", "65536",
        "-1", "1e309", "0x10", "0o17", "1_000", "NaN", ".inf", "-.inf", "", "~", "null", "true", "yes", "0", "00", "+1", " 1",
        "1 ", "10.0.0.0/33", "256.0.0.0", "10.0.0.1/8", "10.0.0.0/-1", "::1", "1.2.3", "1.2.3.4.5", "TCP", "icmp", "drop",
        "DROP", "accept ", "x\ty", "\u00e9", "\U0001F600", "a\u202Eb", "a\nb", "a\0b", "\u001b[31m", "a\u0085b", "\uFEFF",
        "-", "--", "?", ":", "&x", "*x", "!x", "#", "@", "`", "%", "|", ">", "'", "\"", "\\", "tc", "xdp ", "nf-input\n",
        "cgroup-ingress", "/", "..", "/a/../b", "eth0:1", "a/b", "a b", new string('9', 400), new string('a', 65),
        new string('x', 4096), new string('y', 4097), new string('n', 30), new string('d', 33),
        "!!x", "!@x", "@blocklist", "@9", "1000-", "-1000", "65535-0", "0xffffffff/0x", "0x", "5/", "/second", "SYN,ACK", "syn",
        "SYN ACK FIN", "echo-request", "not-first", "ipv6", "2001:db8::/129", "::ffff:1.2.3.4", "fe80::1%eth0", "ipv4-net",
    ];

    private static Y HostileNode(Random rng) => rng.Next(10) switch
    {
        0 => new YList([new YScalar(Pick(rng, HostileScalars))]),
        1 => new YMap([("a", new YScalar("b"))]),
        2 => new YList([]),
        3 => new YMap([]),
        _ => new YScalar(Pick(rng, HostileScalars)),
    };

    private static readonly string[] AllKeys =
        ["bpfilter", "name", "chains", "hook", "interface", "cgroup", "namespace", "mode", "priority", "order", "policy", "rules", "match",
         "action", "source", "destination", "protocol", "source-port", "destination-port", "Name", "actions", "<<", "", "ports",
         "sets", "type", "elements", "family", "in-interface", "out-interface", "tcp-flags", "icmp-type", "icmp-code", "length",
         "fragment", "dscp", "ttl", "hop-limit", "mark", "limit", "not", "mask", "set", "rate", "burst", "jump", "goto", "log", "reject"];

    private static void Collect(Y node, List<Y> into)
    {
        into.Add(node);
        switch (node)
        {
            case YMap m:
                foreach (var (_, v) in m.Entries) Collect(v, into);
                break;
            case YList l:
                foreach (var i in l.Items) Collect(i, into);
                break;
        }
    }

    private static void Fault(Random rng, YMap root)
    {
        var nodes = new List<Y>();
        Collect(root, nodes);
        var collections = nodes.Where(n => n is YMap or YList).ToList();
        var target = Pick(rng, collections);
        switch (target)
        {
            case YMap { Entries.Count: > 0 } m:
                int i = rng.Next(m.Entries.Count);
                switch (rng.Next(5))
                {
                    case 0: m.Entries[i] = (m.Entries[i].Key, HostileNode(rng)); break;
                    case 1: m.Entries.RemoveAt(i); break;
                    case 2: m.Entries.Insert(rng.Next(m.Entries.Count + 1), (Pick(rng, AllKeys), HostileNode(rng))); break;
                    case 3: m.Entries.Add(m.Entries[i]); break;
                    default: m.Entries[i] = (Pick(rng, AllKeys), m.Entries[i].Value); break;
                }
                break;
            case YList { Items.Count: > 0 } l:
                int j = rng.Next(l.Items.Count);
                switch (rng.Next(4))
                {
                    case 0: l.Items[j] = HostileNode(rng); break;
                    case 1: l.Items.Add(l.Items[j]); break;
                    case 2: l.Items.RemoveAt(j); break;
                    default: l.Items[j] = new YList([l.Items[j]]); break;
                }
                break;
            case YMap m:
                m.Entries.Add((Pick(rng, AllKeys), HostileNode(rng)));
                break;
            case YList l:
                l.Items.Add(HostileNode(rng));
                break;
        }
    }

    private FuzzInput Wrong(Random rng)
    {
        var root = Ruleset(rng, out _);
        for (int k = 1 + rng.Next(3); k > 0; k--) Fault(rng, root);
        return new("wrong", new Emitter(rng).Document(root), null, null);
    }

    // ---- Mutations of text -------------------------------------------------------------------------------------------

    private static readonly string[] Tokens =
    [
        ":", ": ", "- ", "-", "[", "]", "{", "}", ",", "? ", "&a ", "*a", "!", "!!str ", "!!map ", "|", ">", "|-", "#", " #", "'",
        "\"", "%", "@", "`", "\t", "\n", "\r", "\r\n", "---", "...", "<<: ", "\\", "\0", "\uFEFF", "\u0085", "\u2028", "  ",
        "99999999999999999999", "-", "~", "&", "*", "!<tag:yaml.org,2002:str> ", "\uD800", "\uDC00", "\U0001F600", "é",
        "!![", "!<> ", "!<!> ", "!<a b> ", "!e!x ", "!!int ", "!!null ", "!!binary ", "!%41 ", "!!seq ",
    ];

    private static readonly char[] Palette =
        ['a', 'z', '0', '9', ' ', ':', '-', '[', ']', '{', '}', ',', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '?',
         '\t', '\n', '\r', '\0', '\u0001', '\u001f', '\u007f', '\u0085', '\u00a0', '\u2028', '\u2029', '\uFEFF', '\uD800',
         '\uDFFF', '\uFFFE', '\uFFFF', '\u00e9', '\u20ac', '.', '/', '\\'];

    private static string Mutate(Random rng, string text, string other)
    {
        if (text.Length == 0) return Pick(rng, Tokens);
        int at = rng.Next(text.Length + 1);
        var lines = text.Split('\n').ToList();
        int line = rng.Next(lines.Count);
        string result;
        switch (rng.Next(16))
        {
            case 0:
                result = at < text.Length ? string.Concat(text.AsSpan(0, at), Palette[rng.Next(Palette.Length)].ToString(), text.AsSpan(at + 1)) : text;
                break;
            case 1:
                result = text.Insert(at, Pick(rng, Tokens));
                break;
            case 2:
                result = text.Remove(Math.Min(at, text.Length - 1), Math.Min(1 + rng.Next(20), text.Length - Math.Min(at, text.Length - 1)));
                break;
            case 3:
                for (int k = rng.Next(4) == 0 ? rng.Next(200) : 1; k > 0; k--) lines.Insert(line, lines[line]);
                result = string.Join('\n', lines);
                break;
            case 4:
                lines.RemoveAt(line);
                result = string.Join('\n', lines);
                break;
            case 5:
                int other2 = rng.Next(lines.Count);
                (lines[line], lines[other2]) = (lines[other2], lines[line]);
                result = string.Join('\n', lines);
                break;
            case 6:
                result = text[..at];
                break;
            case 7:
                // Replace what follows a key with a hostile value, written raw.
                var colon = lines[line].IndexOf(": ", StringComparison.Ordinal);
                var value = Pick(rng, HostileScalars);
                lines[line] = colon >= 0 ? lines[line][..(colon + 2)] + value : lines[line] + ": " + value;
                result = string.Join('\n', lines);
                break;
            case 8:
                var trimmed = lines[line].TrimStart(' ');
                var indent = lines[line].Length - trimmed.Length;
                lines[line] = rng.Next(4) switch
                {
                    0 => "\t" + trimmed,
                    1 => new string(' ', Math.Max(0, indent - 1 - rng.Next(4))) + trimmed,
                    2 => new string(' ', indent + 1 + rng.Next(4)) + trimmed,
                    _ => new string(' ', indent) + "\t" + trimmed,
                };
                result = string.Join('\n', lines);
                break;
            case 9:
                // Wrap a value in lists or mappings, possibly deeper than the limit, possibly unbalanced.
                int depth = rng.Next(10) == 0 ? rng.Next(2000) : 1 + rng.Next(40);
                var colon2 = lines[line].IndexOf(": ", StringComparison.Ordinal);
                string open = rng.Next(2) == 0 ? "[" : "{a: ", close = open == "[" ? "]" : "}";
                string Wrap(string v) => string.Concat(Enumerable.Repeat(open, depth)) + v + string.Concat(Enumerable.Repeat(close, rng.Next(8) == 0 ? depth / 2 : depth));
                lines[line] = colon2 >= 0 ? lines[line][..(colon2 + 2)] + Wrap(lines[line][(colon2 + 2)..]) : Wrap(lines[line]);
                result = string.Join('\n', lines);
                break;
            case 10:
                // Anchor one value, alias it elsewhere, or merge it.
                var first = lines[line].IndexOf(": ", StringComparison.Ordinal);
                if (first >= 0) lines[line] = lines[line].Insert(first + 2, "&a ");
                int target = rng.Next(lines.Count);
                var second = lines[target].IndexOf(": ", StringComparison.Ordinal);
                if (rng.Next(3) == 0) lines.Insert(target, new string(' ', lines[target].Length - lines[target].TrimStart().Length) + "<<: *a");
                else if (second >= 0) lines[target] = lines[target][..(second + 2)] + "*a";
                result = string.Join('\n', lines);
                break;
            case 11:
                var run = new string("x9 -:[#"[rng.Next(7)], rng.Next(4) == 0 ? 5_000 + rng.Next(200_000) : 100 + rng.Next(5_000));
                result = text.Insert(at, rng.Next(2) == 0 ? run : "\nname: " + run + "\n");
                break;
            case 12:
                int cut = rng.Next(other.Length + 1);
                result = rng.Next(2) == 0 ? text[..at] + other[cut..] : other[..cut] + text[at..];
                break;
            case 13:
                var ruleLine = lines.FindIndex(l => l.TrimStart().StartsWith("- ", StringComparison.Ordinal) && l.Contains("action", StringComparison.Ordinal));
                if (ruleLine < 0) ruleLine = line;
                for (int k = rng.Next(500); k > 0; k--) lines.Insert(ruleLine, lines[ruleLine]);
                result = string.Join('\n', lines);
                break;
            case 14:
                var chars = text.ToCharArray();
                for (int k = Math.Max(0, at - 8); k < Math.Min(chars.Length, at + 8); k++)
                    chars[k] = char.IsUpper(chars[k]) ? char.ToLowerInvariant(chars[k]) : char.ToUpperInvariant(chars[k]);
                result = new string(chars);
                break;
            default:
                lines.Insert(line, Pick(rng, ["---", "...", "%YAML 1.2", "%YAML 2.0", "%TAG ! tag:x,2000:", "? x", ": y", "- ", "!!map",
                    "&x", "*y", "|", ">-", "#", "bpfilter: 1", "chains: []", "rules:", "- action: drop", "  - name: X\n    hook: xdp"]));
                result = string.Join('\n', lines);
                break;
        }
        return result.Length > MaxText ? result[..MaxText] : result;
    }

    private FuzzInput Mutated(Random rng)
    {
        var text = Base(rng);
        var other = Base(rng);
        for (int k = 1 + rng.Next(rng.Next(3) == 0 ? 12 : 4); k > 0; k--) text = Mutate(rng, text, other);
        return new("mutated", text, null, null);
    }

    private FuzzInput Spliced(Random rng)
    {
        var a = Base(rng);
        var b = Base(rng);
        var la = a.Split('\n');
        var lb = b.Split('\n');
        var text = string.Join('\n', la.Take(rng.Next(la.Length + 1)).Concat(lb.Skip(rng.Next(lb.Length + 1))));
        return new("spliced", text, null, null);
    }

    // ---- Nesting, aliases, odd YAML ----------------------------------------------------------------------------------

    private static FuzzInput Nested(Random rng)
    {
        int depth = rng.Next(4) switch { 0 => 1 + rng.Next(40), 1 => 25 + rng.Next(15), 2 => rng.Next(1000), _ => rng.Next(100_000) };
        const string head = "bpfilter: 1\nname: demo\nchains:";
        var text = rng.Next(6) switch
        {
            0 => head + " " + new string('[', depth) + new string(']', rng.Next(2) == 0 ? depth : rng.Next(depth + 1)) + "\n",
            1 => head + " " + string.Concat(Enumerable.Repeat("{a: ", depth)) + "x" + new string('}', depth) + "\n",
            2 => head + "\n" + string.Concat(Enumerable.Range(0, Math.Min(depth, 200)).Select(i => new string(' ', i) + "-\n")),
            3 => string.Concat(Enumerable.Range(0, Math.Min(depth, 200)).Select(i => new string(' ', i) + "a:\n")),
            4 => head + "\n  - name: X\n    hook: xdp\n    interface: e\n    rules:\n      - action: drop\n        match: "
                + string.Concat(Enumerable.Repeat("{ source: ", depth)) + "10.0.0.1" + new string('}', depth) + "\n",
            _ => head + " [" + string.Concat(Enumerable.Repeat("[{a: [", Math.Min(depth, 20_000))) + "\n",
        };
        return new("nested", text, null, null);
    }

    private static FuzzInput Aliased(Random rng)
    {
        int levels = 2 + rng.Next(11), fanout = 2 + rng.Next(9);
        var text = new StringBuilder("bpfilter: 1\nname: demo\n");
        switch (rng.Next(4))
        {
            case 0:
                text.Append("l0: &l0 [").Append(string.Join(',', Enumerable.Repeat("\"lol\"", fanout))).Append("]\n");
                for (int i = 1; i < levels; i++)
                    text.Append($"l{i}: &l{i} [").Append(string.Join(',', Enumerable.Repeat($"*l{i - 1}", fanout))).Append("]\n");
                text.Append($"chains: [*l{levels - 1}]\n");
                break;
            case 1:
                text.Append("chains:\n  - &c { name: A, hook: xdp, interface: e0, rules: [&r { action: drop }, *r, *r] }\n  - *c\n");
                break;
            case 2:
                text.Append("chains: [").Append(string.Join(',', Enumerable.Repeat("*undefined", fanout * levels))).Append("]\n");
                break;
            default:
                text.Append("base: &b { action: drop }\nchains:\n  - name: A\n    hook: xdp\n    interface: e\n    rules:\n")
                    .Append(string.Concat(Enumerable.Repeat("      - <<: *b\n        name: x\n", fanout)));
                break;
        }
        return new("aliased", text.ToString(), null, null);
    }

    private FuzzInput Odd(Random rng)
    {
        var valid = ValidText(rng, out _);
        var text = rng.Next(14) switch
        {
            0 => valid + string.Concat(Enumerable.Repeat("---\n", 1 + rng.Next(1000))),
            1 => "%YAML 1.1\n%TAG !e! tag:example.com,2000:\n---\n" + valid.Replace("drop", "!e!verdict drop"),
            2 => valid.Replace("xdp", "!!str xdp").Replace("accept", "!<tag:yaml.org,2002:str> accept"),
            3 => valid.Replace("name: ", "name: !" + new string('t', rng.Next(6000)) + " "),
            4 => "? " + valid.Replace("\n", "\n  ") + "\n: x\n",
            5 => string.Concat(Enumerable.Range(0, rng.Next(300)).Select(i => $"k{i}: {i}\n")) + valid,
            6 => "bpfilter: 1\nname: demo\nchains:\n" + string.Concat(Enumerable.Range(0, rng.Next(4) == 0 ? 990 + rng.Next(20) : rng.Next(20))
                .Select(i => $"  - {{ name: c{i}, hook: tc-ingress, interface: e{i} }}\n")),
            7 => "bpfilter: 1\nname: |\n  demo\nchains:\n  - name: >-\n      IN\n      PUT\n    hook: xdp\n    interface: e\n",
            8 => rng.Next(3) switch { 0 => "", 1 => "# only a comment\n", _ => new string(' ', rng.Next(10_000)) + "\n" },
            9 => valid.Replace("\n", "\r"),
            10 => valid.Replace("\n", rng.Next(2) == 0 ? "\u2028" : "\u0085"),
            11 => "bpfilter: 1\nname: demo\nchains: [{ name: A, hook: xdp, interface: e, rules: ["
                + string.Join(',', Enumerable.Repeat("{action: drop}", rng.Next(2_000))) + "] }]\n",
            12 => valid.Replace(": ", ":\t"),
            _ => "{ " + valid.Replace("\n", " ") + " }",
        };
        return new("odd", text, null, null);
    }

    // ---- Bytes through ReadFile --------------------------------------------------------------------------------------

    private FuzzInput Damaged(Random rng)
    {
        var text = rng.Next(3) == 0 ? Pick(rng, corpus) : ValidText(rng, out _);
        if (rng.Next(5) == 0 && !text.StartsWith('\uFEFF'))
        {
            // Re-encoded whole with a byte order mark: still a valid ruleset when it was one.
            var utf16 = ValidText(rng, out var rules).TrimStart('\uFEFF');
            var encoding = rng.Next(2) == 0 ? (Encoding)new UnicodeEncoding(rng.Next(2) == 0, true) : new UTF32Encoding(rng.Next(2) == 0, true);
            return new("damaged", null, [.. encoding.GetPreamble(), .. encoding.GetBytes(utf16)], rules);
        }
        var bytes = new List<byte>(Encoding.UTF8.GetBytes(text + (rng.Next(2) == 0 ? "# caf\u00e9 \u20ac \U0001F600\n" : "")));
        for (int k = 1 + rng.Next(6); k > 0; k--)
        {
            int at = rng.Next(bytes.Count + 1);
            switch (rng.Next(7))
            {
                case 0 when at < bytes.Count: bytes[at] ^= (byte)(1 << rng.Next(8)); break;
                case 1: bytes.InsertRange(at, Pick<byte[]>(rng, [[0xFF], [0xFE], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0x80], [0xE2, 0x82], [0x00]])); break;
                case 2: bytes.RemoveRange(at, bytes.Count - at); break;
                case 3: bytes.InsertRange(0, Pick<byte[]>(rng, [[0xEF, 0xBB, 0xBF], [0xFF, 0xFE], [0xFE, 0xFF], [0xFF, 0xFE, 0, 0], [0, 0, 0xFE, 0xFF]])); break;
                case 4 when at < bytes.Count: bytes[at] = (byte)rng.Next(256); break;
                case 5: bytes.InsertRange(at, Encoding.Unicode.GetBytes("x: y")); break;
                default: bytes.InsertRange(at, Encoding.UTF8.GetBytes(Pick(rng, Tokens))); break;
            }
        }
        return new("damaged", null, [.. bytes], null);
    }
}
