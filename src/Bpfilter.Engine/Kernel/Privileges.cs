using System.Globalization;
using Bpfilter.Engine.Kernel.Native;

namespace Bpfilter.Engine.Kernel;

/// <summary>Whether this process may do kernel work: its Linux capabilities (CapEff in /proc/self/status) and its user.</summary>
public static class Privileges
{
    public const int CapNetAdmin = 12, CapSysAdmin = 21, CapPerfmon = 38, CapBpf = 39;

    private static readonly (int Bit, string Name)[] Names =
        [(CapBpf, "CAP_BPF"), (CapNetAdmin, "CAP_NET_ADMIN"), (CapPerfmon, "CAP_PERFMON"), (CapSysAdmin, "CAP_SYS_ADMIN")];

    /// <summary>The capabilities needed to load, attach and pin (and, with CAP_SYS_ADMIN, to mount bpffs and open objects by id).</summary>
    public static readonly int[] ForDeployment = [CapBpf, CapNetAdmin, CapPerfmon, CapSysAdmin];

    /// <summary>Reading deployments needs CAP_BPF: without it the kernel hides a program's instructions and sizes.</summary>
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

    public static bool IsRoot => LibC.GetEuid() == 0;

    /// <summary>
    /// Throws one error naming everything missing, before anything is changed. <paramref name="asRoot"/>: the work
    /// reads or writes deployments, which are root's alone (0700 directories, 0600 pins), so a process that is not
    /// root is refused whatever capabilities it has.
    /// </summary>
    public static void Require(IEnumerable<int> capabilities, string action, bool asRoot = false)
    {
        if (!OperatingSystem.IsLinux())
            throw new BpfilterException("NotLinux", FailureCategory.NotImplemented, $"{action} needs Linux: eBPF programs run in the Linux kernel");
        var effective = Effective();
        bool root = IsRoot;
        var missing = Names.Where(n => capabilities.Contains(n.Bit) && (effective & (1UL << n.Bit)) == 0).Select(n => n.Name).ToList();
        if (asRoot && !root) missing.Insert(0, "root (user id 0)");
        if (missing.Count == 0) return;
        throw new BpfilterException("PrivilegeMissing", FailureCategory.PermissionDenied,
            $"{action} needs {string.Join(", ", missing)}, which this process does not have: "
            + (root ? "it runs as root, but with a reduced capability set (setpriv, capsh and containers can drop capabilities); start PowerShell with the full set"
                : "run PowerShell as root (sudo pwsh)"));
    }
}
