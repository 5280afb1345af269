using System.Globalization;

namespace Bpfilter.Engine.Kernel;

/// <summary>
/// How many CPUs per-CPU maps have a value for: the *possible* CPUs (/sys/devices/system/cpu/possible,
/// "0-1" or "0-3,8-11"), not the online ones.
/// </summary>
public static class PossibleCpus
{
    private static readonly Lazy<int> LazyCount = new(() => Parse(File.ReadAllText("/sys/devices/system/cpu/possible")));

    public static int Count => LazyCount.Value;

    public static int Parse(string list)
    {
        int highest = -1;
        foreach (var part in list.Trim().Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var dash = part.IndexOf('-');
            var last = dash < 0 ? part : part[(dash + 1)..];
            highest = Math.Max(highest, int.Parse(last, CultureInfo.InvariantCulture));
        }
        return highest + 1;
    }
}
