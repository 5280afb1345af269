using System.Diagnostics;

namespace Bpfilter.Bench;

/// <summary>Runs the system's own tools (ip, ethtool, iptables, nft), failing loudly on a non-zero exit.</summary>
internal static class Shell
{
    public static string Run(string command, params string[] args) => Run(command, args, null);

    /// <summary>Runs <paramref name="command"/> with <paramref name="input"/> on its standard input; returns its output.</summary>
    public static string Run(string command, IEnumerable<string> args, string? input)
    {
        var (code, output, error) = TryRun(command, args, input);
        if (code != 0) throw new InvalidOperationException($"{command} {string.Join(' ', args)} exited with {code}: {error.Trim()}");
        return output;
    }

    public static (int Code, string Output, string Error) TryRun(string command, IEnumerable<string> args, string? input = null)
    {
        var start = new ProcessStartInfo(command)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = input is not null, UseShellExecute = false,
        };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        if (input is not null)
        {
            process.StandardInput.Write(input);
            process.StandardInput.Close();
        }
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output, error.Result);
    }

    /// <summary>Runs a command inside a named network namespace (ip netns exec).</summary>
    public static string InNamespace(string ns, string command, IEnumerable<string> args, string? input = null) =>
        Run("ip", new[] { "netns", "exec", ns, command }.Concat(args), input);

    /// <summary>Wall-clock milliseconds of one run of a command in a namespace, the process start included (as a user runs it).</summary>
    public static double TimeInNamespace(string ns, string command, IEnumerable<string> args, string? input = null)
    {
        var clock = Stopwatch.StartNew();
        InNamespace(ns, command, args, input);
        return clock.Elapsed.TotalMilliseconds;
    }

    /// <summary>One counter of 'ethtool -S' on a device in a namespace.</summary>
    public static ulong EthtoolStat(string ns, string device, string name)
    {
        foreach (var line in InNamespace(ns, "ethtool", ["-S", device]).Split('\n'))
        {
            var parts = line.Split(':', 2, StringSplitOptions.TrimEntries);
            if (parts.Length == 2 && parts[0] == name) return ulong.Parse(parts[1]);
        }
        throw new InvalidOperationException($"ethtool -S {device} has no counter {name}");
    }
}
