using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using Bpfilter.Engine.Compiler;
using Bpfilter.Engine.Deployment;
using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Kernel;
using Bpfilter.Engine.Rules;

// Benchmarks that need the engine, one CSV row per measurement:
//   program-cost: ns per packet by BPF_PROG_TEST_RUN (repeat 1,000,000) against the rule count, matching rule last;
//   publish:      time to compile, load, attach and pin N rules on a veth in a namespace of its own, and to republish.
// Every figure is the median of several runs; min and max are printed beside it.
// 10,000 rules is out of reach of a linear chain: the verifier refuses more than 8,192 pending branches (issue 6).
var counts = new[] { 1, 10, 100, 1_000 };
var what = args.Length > 0 ? args[0] : "all";
Console.WriteLine("benchmark,hook,rules,median,min,max,unit");
if (what is "all" or "program-cost") ProgramCost();
if (what is "all" or "publish") PublishTime();

void ProgramCost()
{
    foreach (var hook in new[] { Hook.Xdp, Hook.TcIngress })
    {
        foreach (var n in counts)
        {
            var chain = new Chain("BENCH", hook, "lo", Verdict.Accept, Rules(n));
            var compiled = ChainCompiler.Compile(chain);
            using var counters = BpfMap.Create(compiled.Counters);
            using var program = LoadedProgram.Load(compiled.Program, new Dictionary<MapSpec, BpfMap> { [compiled.Counters] = counters });
            var frame = Frame(9999);
            var runs = Enumerable.Range(0, 5).Select(_ => (double)program.TestRunDuration(frame, 1_000_000)).Order().ToArray();
            Row("program-cost", hook, n, runs, "ns/packet");
        }
    }
}

void PublishTime()
{
    var id = Guid.NewGuid().ToString("N")[..6];
    string ns = $"bpft-{id}-b", peer = $"bpft-{id}-p", dev = $"bpft{id}b";
    Ip("netns", "add", ns);
    Ip("netns", "add", peer);
    try
    {
        Ip("link", "add", dev, "netns", ns, "type", "veth", "peer", "name", $"bpft{id}p", "netns", peer);
        Ip("-n", ns, "link", "set", dev, "up");
        foreach (var n in counts)
        {
            var name = $"bpft-bench-{id}";
            var first = new List<double>();
            var again = new List<double>();
            for (int round = 0; round < 3; round++)
            {
                var ruleset = new Ruleset(name, [new Chain("BENCH", Hook.Xdp, dev, Verdict.Accept, Rules(n))]);
                var clock = Stopwatch.StartNew();
                Publisher.Publish(ruleset, new PublishOptions(ns));
                first.Add(clock.Elapsed.TotalMilliseconds);
                clock.Restart();
                Publisher.Publish(ruleset, new PublishOptions(ns));
                again.Add(clock.Elapsed.TotalMilliseconds);
                Deployments.Unpublish(name);
            }
            Row("publish", Hook.Xdp, n, first.Order().ToArray(), "ms");
            Row("republish", Hook.Xdp, n, again.Order().ToArray(), "ms");
        }
    }
    finally
    {
        Ip("netns", "delete", ns);
        Ip("netns", "delete", peer);
    }
}

// N rules that differ in port and source, each with two fields, the one that matches the frame last.
static Rule[] Rules(int n) => Enumerable.Range(0, n).Select(i => new Rule($"r{i}",
    new Match
    {
        Source = new AddressMatch([IpPrefix.Parse(i == n - 1 ? "10.0.0.1" : $"10.{(i >> 8) & 0xff}.{i & 0xff}.9")]),
        Protocol = new ProtocolMatch(IpProtocol.Udp),
        DestinationPort = PortMatch.Single((ushort)(i == n - 1 ? 9999 : 10000 + i % 50000)),
    }, Verdict.Drop)).ToArray();

static byte[] Frame(ushort port)
{
    var frame = new byte[64];
    BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(12), 0x0800);
    frame[14] = 0x45;
    BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(16), 50);
    frame[22] = 64; frame[23] = 17;
    new byte[] { 10, 0, 0, 1 }.CopyTo(frame, 26);
    new byte[] { 10, 0, 0, 2 }.CopyTo(frame, 30);
    BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(34), 12345);
    BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(36), port);
    return frame;
}

static void Row(string benchmark, Hook hook, int rules, double[] sorted, string unit) =>
    Console.WriteLine(string.Join(',', benchmark, hook.ToName(), rules.ToString(CultureInfo.InvariantCulture),
        F(sorted[sorted.Length / 2]), F(sorted[0]), F(sorted[^1]), unit));

static string F(double value) => value.ToString("0.###", CultureInfo.InvariantCulture);

static void Ip(params string[] args)
{
    var start = new ProcessStartInfo("ip") { RedirectStandardError = true };
    foreach (var a in args) start.ArgumentList.Add(a);
    using var process = Process.Start(start)!;
    process.WaitForExit();
    if (process.ExitCode != 0) throw new InvalidOperationException($"ip {string.Join(' ', args)}: {process.StandardError.ReadToEnd()}");
}
