namespace Bpfilter.Bench;

/// <summary>One data-plane measurement: a variant with N rules (0 for the references) in one round.</summary>
/// <param name="Valid">The variant's own drop counter equals the frames delivered into the receiver's ring, and some were.</param>
internal sealed record DataPlaneRun(int Round, string Variant, int Rules, double Mpps, ulong Sent, ulong Delivered, ulong Dropped, bool Valid, string Note);

/// <summary>
/// 64-byte UDP frames from the generator namespace into the receiver namespace, every variant in a fresh pair of
/// namespaces. Each round measures every variant at every rule count, alternating them, so a machine that slows
/// down during the run slows them all alike; the references (no rule count) are measured once a round.
/// </summary>
internal static class DataPlane
{
    public static List<DataPlaneRun> Run(BenchSettings settings, Action<string> log)
    {
        var runs = new List<DataPlaneRun>();
        var variants = Variant.All.Where(v => settings.Variants is null || settings.Variants.Any(name => v.Name.Contains(name, StringComparison.Ordinal))).ToList();
        for (int round = 1; round <= settings.Rounds; round++)
        {
            foreach (var variant in variants.Where(v => !v.UsesRules)) runs.Add(Measure(variant, 0, round, settings, log));
            foreach (var n in settings.RuleCounts)
                foreach (var variant in variants.Where(v => v.UsesRules)) runs.Add(Measure(variant, n, round, settings, log));
        }
        return runs;
    }

    private static DataPlaneRun Measure(Variant variant, int rules, int round, BenchSettings settings, Action<string> log)
    {
        DataPlaneRun run;
        try
        {
            using var topology = new Topology();
            using var installed = variant.Install(topology, rules);
            using var generator = new Generator(topology, Rulesets.MatchedPort);
            var sent = generator.Run(settings.Duration);
            ulong delivered = topology.Delivered();
            ulong dropped = installed.Dropped();
            bool valid = delivered > 0 && dropped == delivered && sent.Mpps > 0;
            string note = valid ? "" : delivered == 0 ? "nothing delivered" : dropped != delivered ? $"dropped {dropped} of {delivered} delivered" : "too few frames to time";
            run = new DataPlaneRun(round, variant.Name, rules, sent.Mpps, sent.Sent, delivered, dropped, valid, note);
        }
        catch (Exception e)
        {
            run = new DataPlaneRun(round, variant.Name, rules, 0, 0, 0, 0, false, FirstLine(e.Message));
        }
        log($"round {round} {variant.Name,-24} {rules,6} rules: {run.Mpps,8:0.000} Mpps {(run.Valid ? "" : "INVALID " + run.Note)}");
        return run;
    }

    internal static string FirstLine(string text) => text.Split('\n')[0].Trim();
}
