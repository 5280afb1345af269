using System.Diagnostics;
using Bpfilter.Engine.Formats.Iptables;
using Bpfilter.Engine.Rules;
using Xunit;

namespace Bpfilter.Engine.Tests;

/// <summary>
/// What the writer writes, iptables-restore takes, and iptables-save gives back what the reader reads into the same
/// ruleset: each dump is restored into a network namespace of the test's own (bpft-ipt-ID), saved and read again.
/// </summary>
[Collection("kernel")]
public sealed class KernelIptablesTests : IDisposable
{
    private readonly string _namespace = $"bpft-ipt-{Guid.NewGuid().ToString("N")[..6]}";

    public KernelIptablesTests() => Sandbox.Ip("netns", "add", _namespace);

    public void Dispose()
    {
        if (File.Exists($"/run/netns/{_namespace}")) Sandbox.Ip("netns", "delete", _namespace);
    }

    /// <summary>Restores <paramref name="dump"/> with (ip6)iptables-restore in the namespace and returns (ip6)iptables-save's output.</summary>
    private string RestoreAndSave(string dump, IpFamily family)
    {
        var tool = family == IpFamily.Ipv6 ? "ip6tables" : "iptables";
        var (restored, restoreError) = Run(tool + "-restore", dump);
        Assert.True(restored is not null, $"{tool}-restore refused the writer's dump: {restoreError}\n{dump}");
        var (saved, saveError) = Run(tool + "-save", null);
        return saved ?? throw new InvalidOperationException($"{tool}-save failed: {saveError}");
    }

    private (string? Output, string Error) Run(string tool, string? input)
    {
        var start = new ProcessStartInfo("ip") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "netns", "exec", _namespace, tool }) start.ArgumentList.Add(arg);
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("the 'ip' command is missing; build.ps1 Test installs iproute2 and iptables", e);
        }
        using (process)
        {
            var output = process.StandardOutput.ReadToEndAsync();
            var error = process.StandardError.ReadToEndAsync();
            process.StandardInput.Write(input ?? "");
            process.StandardInput.Close();
            process.WaitForExit();
            if (process.ExitCode == 255 && error.Result.Contains("No such file", StringComparison.Ordinal))
                throw new InvalidOperationException($"{tool} is missing: build.ps1 Test installs it (apt-get install iptables)");
            return (process.ExitCode == 0 ? output.Result : null, error.Result.Trim());
        }
    }

    [Fact]
    public void Every_corpus_dump_written_and_restored_saves_back_the_same_rules()
    {
        foreach (var file in IptablesSaveTests.CorpusFiles)
        {
            var source = IptablesSaveTests.Source(file);
            var read = IptablesSaveReader.Read([source], "corpus");
            var written = IptablesSaveWriter.Write(read, source.Family);
            var saved = IptablesSaveReader.Read(RestoreAndSave(written, source.Family), file + " (saved)", "corpus", source.Family);
            IptablesSaveTests.AssertSame(OneRulePerAddress(IptablesSaveReader.Read(written, file, "corpus", source.Family)), saved);
        }
    }

    [Theory]
    [InlineData(IpFamily.Ipv4)]
    [InlineData(IpFamily.Ipv6)]
    public void Generated_rulesets_written_and_restored_save_back_the_same(IpFamily family)
    {
        int rules = 0;
        for (int seed = 0; seed < 15; seed++)
        {
            var ruleset = IptablesGenerators.Ruleset(1000 + seed, family, commaLists: false, maxRules: 20);
            var saved = RestoreAndSave(IptablesSaveWriter.Write(ruleset, family), family);
            IptablesSaveTests.AssertSame(ruleset, IptablesSaveReader.Read(saved, $"seed {seed} (saved)", "generated", family));
            rules += ruleset.Chains.Sum(c => c.Rules.Count) + ruleset.UserChains.Sum(c => c.Rules.Count);
        }
        Assert.True(rules > 300, $"only {rules} rules were generated");
    }

    [Fact]
    public void Iptables_splits_a_comma_list_into_one_rule_per_address_pair_with_the_comment_on_each()
    {
        var dump = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            + "-A INPUT -s 10.1.0.0/16,10.2.0.0/16 -d 192.0.2.1,192.0.2.2 -m comment --comment pair -j DROP\nCOMMIT\n";
        var saved = IptablesSaveReader.Read(RestoreAndSave(dump, IpFamily.Ipv4), "saved", "split", IpFamily.Ipv4);
        var rules = saved.Chains[0].Rules;
        Assert.Equal(["pair", "pair #2", "pair #3", "pair #4"], rules.Select(r => r.Name));
        Assert.Equal(["10.1.0.0/16 192.0.2.1", "10.1.0.0/16 192.0.2.2", "10.2.0.0/16 192.0.2.1", "10.2.0.0/16 192.0.2.2"],
            rules.Select(r => $"{r.Match.Source} {r.Match.Destination}"));
    }

    /// <summary>The ruleset as iptables stores it: a rule with comma lists of addresses becomes one rule per source and destination pair.</summary>
    private static Ruleset OneRulePerAddress(Ruleset ruleset)
    {
        List<Rule> Split(IEnumerable<Rule> rules) => IptablesSaveReader.UniqueNames(rules.SelectMany(rule =>
        {
            IEnumerable<AddressMatch?> Each(AddressMatch? match) =>
                match is { Prefixes.Count: > 1 } && AddressRanges.AsRange(match.Prefixes) is null ? match.Prefixes.Select(p => (AddressMatch?)new AddressMatch([p])) : [match];
            return from source in Each(rule.Match.Source)
                   from destination in Each(rule.Match.Destination)
                   select new Rule(rule.Name, rule.Match with { Source = source, Destination = destination }, rule.Verdict);
        }).ToList());
        return new Ruleset(ruleset.Name,
            ruleset.Chains.Select(c => new Chain(c.Name, c.Hook, c.Interface, c.Policy, Split(c.Rules), c.Mode, c.Priority, c.Order, c.Cgroup, c.NetworkNamespace)).ToList(),
            ruleset.SourcePath, ruleset.UserChains.Select(c => new UserChain(c.Name, Split(c.Rules))).ToList());
    }
}
