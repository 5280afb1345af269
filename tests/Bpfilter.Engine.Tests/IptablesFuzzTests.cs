using System.Diagnostics;
using System.Globalization;
using System.Text;
using Bpfilter.Engine.Formats;
using Bpfilter.Engine.Formats.Iptables;
using Bpfilter.Engine.Rules;
using Xunit;
using Xunit.Abstractions;

namespace Bpfilter.Engine.Tests;

/// <summary>
/// Fuzzes <see cref="IptablesSaveReader"/> for a bounded time with a fixed seed: the corpus dumps and generated ones,
/// mutated (bytes flipped, lines dropped, doubled and swapped, options and values from iptables' vocabulary put in,
/// huge numbers, long lines, control characters, quotes, truncation). Every input must end in a ruleset or in a
/// <see cref="RulesetFormatException"/> with a line and a column inside the input, each within seconds. No other
/// exception, no hang. BPFILTER_FUZZ_SECONDS sets the time (15 s by default), BPFILTER_FUZZ_SEED the seed.
/// </summary>
[Collection("yaml-reader")]
public sealed class IptablesFuzzTests(ITestOutputHelper output)
{
    private static readonly string[] Vocabulary =
    [
        "-A", "-I", "-N", "-j", "-g", "-p", "-s", "-d", "-i", "-o", "!", "-m", "--dport", "--sport", "--dports", "--sports", "--ports",
        "tcp", "udp", "icmp", "ipv6-icmp", "multiport", "iprange", "limit", "comment", "conntrack", "state", "length", "ttl", "hl",
        "dscp", "mark", "--src-range", "--dst-range", "--limit", "--limit-burst", "--comment", "--tcp-flags", "--syn", "--icmp-type",
        "--icmpv6-type", "--length", "--ttl-eq", "--ttl-lt", "--hl-gt", "--dscp", "--mark", "-f", "ACCEPT", "DROP", "REJECT", "RETURN",
        "LOG", "--log-prefix", "--reject-with", "tcp-reset", "icmp-port-unreachable", "SYN,ACK", "ALL", "NONE", "0:65535", "1:", ":5",
        "10.0.0.0/8", "10.0.0.1-10.0.0.300", "::/0", "2001:db8::/129", "999999999999999999999", "-1", "0x", "3/sec", "5/fortnight",
        "\"", "'", "\\", "[0:0]", "[18446744073709551616:1]", ":INPUT", ":FOO -", "*filter", "*nat", "COMMIT", "#", "eth+", "lo",
    ];

    [Fact]
    public async Task Mutated_and_generated_dumps_end_in_a_ruleset_or_an_error_with_a_position()
    {
        double seconds = double.TryParse(Environment.GetEnvironmentVariable("BPFILTER_FUZZ_SECONDS"), NumberStyles.Float, CultureInfo.InvariantCulture, out var s) && s > 0 ? s : 15;
        int seed = int.TryParse(Environment.GetEnvironmentVariable("BPFILTER_FUZZ_SEED"), out var given) ? given : 20261202;
        var random = new Random(seed);
        var corpus = Directory.GetFiles(IptablesSaveTests.CorpusDirectory, "*.rules").Select(File.ReadAllText).ToList();
        for (int i = 0; i < 20; i++)
        {
            var family = i % 2 == 0 ? IpFamily.Ipv4 : IpFamily.Ipv6;
            corpus.Add(IptablesSaveWriter.Write(IptablesGenerators.Ruleset(1000 + i, family, commaLists: i % 3 == 0), family));
        }
        long executions = 0, rulesets = 0, errors = 0;
        var slowest = TimeSpan.Zero;
        var failures = new List<string>();
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed.TotalSeconds < seconds && failures.Count < 5)
        {
            var text = Mutate(random, corpus[random.Next(corpus.Count)]);
            var family = random.Next(2) == 0 ? IpFamily.Ipv4 : IpFamily.Ipv6;
            var one = Stopwatch.StartNew();
            var run = Task.Run(() => IptablesSaveReader.Read(text, "fuzz.rules", "fuzz", family));
            if (await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(10))) != run)
            {
                failures.Add($"hang on {Escape(text)}");
                break;
            }
            executions++;
            if (one.Elapsed > slowest) slowest = one.Elapsed;
            if (run.Exception?.InnerException is { } e)
            {
                if (e is RulesetFormatException f)
                {
                    errors++;
                    int lines = text.Split('\n').Length;
                    if (f.Line < 1 || f.Line > lines + 1 || f.Column < 1) failures.Add($"position {f.Line}:{f.Column} outside the input ({lines} lines): {f.Message}");
                }
                else failures.Add($"crash {e.GetType().Name}: {e.Message} on {Escape(text)}");
            }
            else rulesets++;
        }
        output.WriteLine($"{executions} dumps in {clock.Elapsed.TotalSeconds:0.0} s (seed {seed}): {rulesets} rulesets, {errors} errors with a position, "
            + $"{failures.Count} failures; slowest {slowest.TotalMilliseconds:0} ms");
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.True(slowest < TimeSpan.FromSeconds(5), $"one dump took {slowest}"); // generous: the machine may be busy; a hang is caught above
        Assert.True(rulesets > 0 && errors > 0, "the mutations should give both rulesets and errors");
    }

    private static string Mutate(Random random, string text)
    {
        var lines = text.Split('\n').ToList();
        for (int n = random.Next(1, 5); n > 0; n--)
        {
            int at = random.Next(lines.Count);
            switch (random.Next(10))
            {
                case 0: lines.RemoveAt(at); if (lines.Count == 0) lines.Add(""); break;
                case 1: lines.Insert(at, lines[random.Next(lines.Count)]); break;
                case 2: (lines[at], lines[random.Next(lines.Count)]) = (lines[random.Next(lines.Count)], lines[at]); break;
                case 3:
                {
                    var words = lines[at].Split(' ').ToList();
                    words.Insert(random.Next(words.Count + 1), Vocabulary[random.Next(Vocabulary.Length)]);
                    lines[at] = string.Join(' ', words);
                    break;
                }
                case 4:
                {
                    var words = lines[at].Split(' ').ToList();
                    if (words.Count > 1) words.RemoveAt(random.Next(words.Count));
                    lines[at] = string.Join(' ', words);
                    break;
                }
                case 5:
                    if (lines[at].Length > 0)
                    {
                        var chars = lines[at].ToCharArray();
                        chars[random.Next(chars.Length)] = (char)random.Next(0, 0x250);
                        lines[at] = new string(chars);
                    }
                    break;
                case 6: lines[at] = lines[at] + " " + new string('9', random.Next(20, 400)); break;
                case 7: lines[at] = lines[at][..random.Next(lines[at].Length + 1)]; break;
                case 8: lines.Insert(at, "-A INPUT " + string.Join(' ', Enumerable.Range(0, random.Next(1, 12)).Select(_ => Vocabulary[random.Next(Vocabulary.Length)]))); break;
                default: lines[at] = lines[at].Replace(' ', random.Next(2) == 0 ? '\t' : ' '); break;
            }
        }
        return string.Join('\n', lines);
    }

    private static string Escape(string text) => text.Length > 300 ? text[..300].ReplaceLineEndings("\\n") + "..." : text.ReplaceLineEndings("\\n");
}
