using System.Globalization;

namespace Bpfilter.Engine.Kernel;

/// <summary>Linux capabilities of this process, read from /proc/self/status (CapEff).</summary>
public static class Privileges
{
    public const int CapNetAdmin = 12, CapSysAdmin = 21, CapPerfmon = 38, CapBpf = 39;

    private static readonly (int Bit, string Name)[] Names =
        [(CapBpf, "CAP_BPF"), (CapNetAdmin, "CAP_NET_ADMIN"), (CapPerfmon, "CAP_PERFMON"), (CapSysAdmin, "CAP_SYS_ADMIN")];

    /// <summary>The capabilities needed to load, attach and pin (and, with CAP_SYS_ADMIN, to mount bpffs and open objects by id).</summary>
    public static readonly int[] ForDeployment = [CapBpf, CapNetAdmin, CapPerfmon, CapSysAdmin];

    /// <summary>Reading pinned counters needs CAP_BPF (pins are root-only files anyway).</summary>
    public static readonly int[] ForReading = [CapBpf];

    public static ulong Effective()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("CapEff:", StringComparison.Ordinal))
                return ulong.Parse(line[7..].Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        }
        return 0;
    }

    /// <summary>Throws one error naming every missing capability, before anything is changed.</summary>
    public static void Require(IEnumerable<int> capabilities, string action)
    {
        if (!OperatingSystem.IsLinux())
            throw new BpfilterException("NotLinux", FailureCategory.NotImplemented, $"{action} needs Linux: eBPF programs run in the Linux kernel");
        var effective = Effective();
        var missing = Names.Where(n => capabilities.Contains(n.Bit) && (effective & (1UL << n.Bit)) == 0).Select(n => n.Name).ToList();
        if (missing.Count > 0)
            throw new BpfilterException("PrivilegeMissing", FailureCategory.PermissionDenied,
                $"{action} needs {string.Join(", ", missing)}, which this process does not have: run PowerShell as root (sudo pwsh)");
    }
}
