namespace Bpfilter.Engine.Kernel;

/// <summary>Finds the cgroup v2 hierarchy (/sys/fs/cgroup on unified hosts, /sys/fs/cgroup/unified on hybrid ones).</summary>
public static class Cgroups
{
    /// <summary>The mount point of cgroup2, from /proc/self/mountinfo.</summary>
    public static string Cgroup2Mount()
    {
        foreach (var line in File.ReadLines("/proc/self/mountinfo"))
        {
            // "... mount-point options - fstype source superoptions"
            var separator = line.IndexOf(" - ", StringComparison.Ordinal);
            if (separator < 0 || !line[(separator + 3)..].StartsWith("cgroup2 ", StringComparison.Ordinal)) continue;
            var fields = line[..separator].Split(' ');
            if (fields.Length > 4) return fields[4].Replace("\\040", " ");
        }
        throw new BpfilterException("CgroupUnavailable", FailureCategory.ResourceUnavailable,
            "no cgroup v2 hierarchy is mounted: cgroup hooks need one (mount -t cgroup2 none /sys/fs/cgroup)");
    }

    /// <summary>An absolute cgroup directory stays as it is; a relative one is taken under the cgroup2 mount.</summary>
    public static string Resolve(string path) => path.StartsWith('/') ? path : Path.Combine(Cgroup2Mount(), path);
}
