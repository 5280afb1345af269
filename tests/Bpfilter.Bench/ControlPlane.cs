using System.Diagnostics;
using System.Text.RegularExpressions;
using Bpfilter.Engine.Compiler;
using Bpfilter.Engine.Deployment;
using Bpfilter.Engine.Kernel;
using Bpfilter.Engine.Rules;
using Match = Bpfilter.Engine.Rules.Match;

namespace Bpfilter.Bench;

/// <summary>Milliseconds of one control-plane operation by one tool, once per repetition.</summary>
internal sealed record ControlPlaneRun(string Operation, string Tool, int Rules, double[] Milliseconds, string Note);

/// <summary>
/// How long it takes to install N rules (Bpfilter's publish at native XDP against iptables-restore and nft -f, each
/// as its user runs it: the tools' process start included), to change one rule of them (a republish; iptables -R;
/// nft replace rule), and to add one member to a set of N (DeploymentSets.Add, as Add-BpfSetMember does; nft add
/// element). Each in the receiver namespace of a fresh topology.
/// </summary>
internal static partial class ControlPlane
{
    public static List<ControlPlaneRun> Run(BenchSettings settings, Action<string> log)
    {
        var runs = new List<ControlPlaneRun>();
        foreach (var n in settings.RuleCounts)
        {
            using var topology = new Topology();
            var ns = topology.Receiver;
            var deployment = "bpft-bench-" + ns.Split('-')[1];
            void Add(string operation, string tool, Func<double> once)
            {
                double[] times;
                string note = "";
                try
                {
                    times = Enumerable.Range(0, settings.ControlRuns).Select(_ => once()).ToArray();
                }
                catch (Exception e)
                {
                    times = [];
                    note = DataPlane.FirstLine(e.Message);
                }
                runs.Add(new ControlPlaneRun(operation, tool, n, times, note));
                log($"{operation,-14} {tool,-16} {n,6} rules: " + (times.Length > 0 ? $"{ProgramCost.Median(times):0.0} ms" : note));
            }

            Ruleset Pairs(Rule[] rules) =>
                new(deployment, [new Chain("IN", Hook.Xdp, topology.ReceiverInterface, Verdict.Accept, rules)]);
            var rules = Rulesets.Pairs(n);
            var changed = rules.ToArray();
            changed[0] = new Rule(rules[0].Name, rules[0].Match with { DestinationPort = PortMatch.Single(1) }, Verdict.Drop);
            Add("install", "bpfilter", () =>
            {
                var clock = Stopwatch.StartNew();
                Publisher.Publish(Pairs(rules), new PublishOptions(ns));
                double ms = clock.Elapsed.TotalMilliseconds;
                Deployments.Unpublish(deployment);
                return ms;
            });
            Add("change-rule", "bpfilter", () =>
            {
                Publisher.Publish(Pairs(rules), new PublishOptions(ns));
                var clock = Stopwatch.StartNew();
                Publisher.Publish(Pairs(changed), new PublishOptions(ns));
                double ms = clock.Elapsed.TotalMilliseconds;
                Deployments.Unpublish(deployment);
                return ms;
            });
            Add("add-set-member", "bpfilter", () =>
            {
                var set = new NamedSet("hosts", SetType.Ipv4Address, Enumerable.Range(0, n).Select(i => SetElement.Parse(SetType.Ipv4Address, Rulesets.Pair(i, n).Source)));
                var rule = new Rule("hosts", new Match { Source = AddressMatch.InSet("hosts") }, Verdict.Drop);
                Publisher.Publish(new Ruleset(deployment, [new Chain("IN", Hook.Xdp, topology.ReceiverInterface, Verdict.Accept, [rule])], sets: [set]), new PublishOptions(ns));
                var clock = Stopwatch.StartNew();
                DeploymentSets.Add(deployment, "hosts", ["10.250.0.1"]);
                double ms = clock.Elapsed.TotalMilliseconds;
                Deployments.Unpublish(deployment);
                return ms;
            });
            // What the kernel side of that costs: open the pinned set map and write one key (the rest is the manifest).
            Add("add-set-member", "bpfilter map update", () =>
            {
                var set = new NamedSet("hosts", SetType.Ipv4Address, Enumerable.Range(0, n).Select(i => SetElement.Parse(SetType.Ipv4Address, Rulesets.Pair(i, n).Source)));
                var rule = new Rule("hosts", new Match { Source = AddressMatch.InSet("hosts") }, Verdict.Drop);
                Publisher.Publish(new Ruleset(deployment, [new Chain("IN", Hook.Xdp, topology.ReceiverInterface, Verdict.Accept, [rule])], sets: [set]), new PublishOptions(ns));
                var clock = Stopwatch.StartNew();
                using (var map = BpfMap.OpenPinned(DeploymentPaths.Pin(deployment, "set-hosts-1"))!)
                    map.Update(SetMaps.KeysOf(SetType.Ipv4Address, SetElement.Parse(SetType.Ipv4Address, "10.250.0.1")).Single(), SetMaps.Present);
                double ms = clock.Elapsed.TotalMilliseconds;
                Deployments.Unpublish(deployment);
                return ms;
            });

            foreach (var tool in new[] { "iptables-legacy", "iptables-nft" })
            {
                Add("install", tool, () => Shell.TimeInNamespace(ns, $"{tool}-restore", [], Rulesets.IptablesRestore(n)));
                Add("change-rule", tool, () => Shell.TimeInNamespace(ns, tool, ["-R", "INPUT", "1", "-s", "10.99.0.1/32", "-p", "udp", "--dport", "1", "-j", "DROP"]));
            }

            Add("install", "nft", () =>
            {
                Shell.TryRun("ip", ["netns", "exec", ns, "nft", "delete", "table", "ip", "bench"]);
                return Shell.TimeInNamespace(ns, "nft", ["-f", "-"], Rulesets.NftLinear(n));
            });
            var handle = HandlePattern().Match(Shell.InNamespace(ns, "nft", ["-a", "list", "chain", "ip", "bench", "input"])).Groups[1].Value;
            Add("change-rule", "nft", () =>
                Shell.TimeInNamespace(ns, "nft", ["replace", "rule", "ip", "bench", "input", "handle", handle, "ip", "saddr", "10.99.0.1", "udp", "dport", "1", "counter", "drop"]));
            Shell.InNamespace(ns, "nft", ["delete", "table", "ip", "bench"]);
            Shell.InNamespace(ns, "nft", ["-f", "-"], Rulesets.NftSet(n));
            int member = 0;
            Add("add-set-member", "nft", () =>
                Shell.TimeInNamespace(ns, "nft", ["add", "element", "ip", "bench", "pairs", "{", $"10.250.0.{++member}", ".", "1", "}"]));
        }
        return runs;
    }

    [GeneratedRegex(@"counter packets \d+ bytes \d+ drop # handle (\d+)")]
    private static partial Regex HandlePattern();
}
