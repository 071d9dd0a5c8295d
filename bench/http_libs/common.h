// Shared by the three servers: one "scheduler" thread that runs closures (the hop the real request path makes), and the 1 KiB answer.
#pragma once
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
struct Executor {
  std::mutex mu; std::condition_variable cv; std::deque<std::function<void()>> q; bool stop=false;
  std::thread t{[this]{ for(;;){ std::function<void()> f; { std::unique_lock<std::mutex> l(mu); cv.wait(l,[&]{return stop||!q.empty();}); if(q.empty()) return; f=std::move(q.front()); q.pop_front(); } f(); } }};
  void Post(std::function<void()> f){ { std::lock_guard<std::mutex> l(mu); q.push_back(std::move(f)); } cv.notify_one(); }
};
inline const std::string& Reply1K(){ static std::string s = [](){ std::string r="{\"outputs\":[{\"name\":\"OUTPUT0\",\"data\":\""; r.append(1024-r.size()-4,'x'); r+="\"}]}"; return r;}(); return s; }
